"""Sockets and bytes, nothing of HTTP: the listeners and the accept loop
(``listeners.py``), and the transport under one connection (``transport.py``)."""
