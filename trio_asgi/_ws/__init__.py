"""WebSocket (RFC 6455) over wsproto: the ASGI ``websocket`` session (``session.py``) over
its wire side (``protocol.py``), with the sans-IO pieces beside them: the HTTP/1.1 handshake
(``handshake.py``), received-message counting and queueing (``inbound.py``), message-to-frame
helpers and close codes (``frames.py``), the bounded permessage-deflate extension (RFC 7692,
``deflate.py``) and the settings they read (``settings.py``). ``session.py``'s docstring
draws who calls whom."""
