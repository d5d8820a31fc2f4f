"""WebSocket (RFC 6455) over wsproto: the ASGI ``websocket`` session, the message-to-frame
helpers and the bounded permessage-deflate extension (RFC 7692)."""
