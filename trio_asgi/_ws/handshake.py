"""The HTTP/1.1 side of a WebSocket handshake (RFC 6455 section 4), over wsproto's
``H11Handshake``: the upgrade request checked, then the 101 or the refusal as bytes.

The checks are wsproto's (``Sec-WebSocket-Key``, version 13, ``Connection: upgrade``), so a
malformed handshake raises ``RemoteProtocolError`` whose ``event_hint`` is the answer (a 400
or a 426 that names what is missing; see :func:`~trio_asgi._ws.frames.reject_handshake`).
Once accepted, the frames are a ``wsproto.connection.Connection``'s (``protocol.py``); an
HTTP/2 stream (RFC 8441) would replace this module, not that one. Sans-IO, no trio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request
from wsproto.extensions import Extension
from wsproto.handshake import H11Handshake
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from .._errors import InvalidMessage

if TYPE_CHECKING:
    from .._http.request import RequestHead

__all__ = ["UpgradeHandshake"]

Headers = list[tuple[bytes, bytes]]


class UpgradeHandshake:
    """The server side of one HTTP/1.1 WebSocket handshake.

    Args:
        request: the upgrade request's parsed head.

    Raises:
        wsproto.utilities.RemoteProtocolError: the handshake is malformed (HTTP/1.0
            included, RFC 6455 section 4.1); its ``event_hint`` is the rejection to send.

    Attributes:
        subprotocols (list[str]): the subprotocols the client offered, in its order.
    """

    __slots__ = ("_handshake", "subprotocols")

    def __init__(self, request: RequestHead) -> None:
        if request.http_version != b"1.1":
            raise RemoteProtocolError(
                "a WebSocket handshake needs HTTP/1.1 (RFC 6455 section 4.1)",
                RejectConnection(status_code=400),
            )
        self._handshake = H11Handshake(ConnectionType.SERVER)
        self._handshake.initiate_upgrade_connection(list(request.headers), request.target)
        handshake = next(self._handshake.events())
        if not isinstance(handshake, Request):  # pragma: no cover - wsproto always gives one
            raise RemoteProtocolError("no WebSocket handshake request", RejectConnection())
        self.subprotocols = list(handshake.subprotocols)

    def accept(
        self, subprotocol: str | None, extensions: list[Extension], headers: Headers
    ) -> tuple[bytes, Connection]:
        """The 101 response (RFC 6455 section 4.2.2) and the frame protocol it opens.

        ``extensions`` are those the server supports (wsproto keeps the ones the client
        offered); ``headers`` go into the response as they are.

        Raises:
            InvalidMessage: wsproto refused the answer (e.g. a subprotocol not offered).
        """
        try:
            data = self._handshake.send(
                AcceptConnection(
                    subprotocol=subprotocol, extensions=extensions, extra_headers=headers
                )
            )
        except LocalProtocolError as exc:
            raise InvalidMessage(f"'websocket.accept' was refused: {exc}") from None
        connection = self._handshake.connection
        assert connection is not None  # wsproto opens it with the 101
        return data, connection

    def refusal(self, status: int, headers: Headers, *, has_body: bool) -> bytes:
        """The response head that refuses the handshake with ``status`` and ``headers``."""
        return self._handshake.send(
            RejectConnection(status_code=status, headers=headers, has_body=has_body)
        )

    def refusal_body(self, body: bytes, *, finished: bool) -> bytes:
        """A piece of the refusal's body (the ``websocket.http.response`` extension)."""
        return self._handshake.send(RejectData(data=body, body_finished=finished))
