"""HTTP/1.1 (RFC 9112): the request parsers (h11 or httptools, behind one interface), the
request-head policy, the response writer, and the connection driver that runs them."""
