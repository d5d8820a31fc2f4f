"""The few server settings a WebSocket reads, taken out of ``Config`` once per server.

A :class:`WebSocketSettings` is all the session and its wire side know of the server's
configuration: no :class:`~trio_asgi.Config`, no server context. Sans-IO, no trio.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._config import Config

__all__ = ["WebSocketSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class WebSocketSettings:
    """What a WebSocket connection reads of ``Config`` (the fields of the same names).

    Attributes:
        max_size: ``ws_max_size``, bytes a received message may count (RFC 6455 10.4).
        max_queue: ``ws_max_queue``, received messages held for the app's ``receive()``.
        ping_interval: ``ws_ping_interval``, seconds between keepalive pings; 0: none.
        ping_timeout: ``ws_ping_timeout``, seconds a ping waits for its pong.
        per_message_deflate: ``ws_per_message_deflate``, accept permessage-deflate (RFC 7692).
        disconnect_timeout: seconds the app may run on once the disconnect is known.
        access_log: log one ``trio_asgi.access`` line for the handshake's answer.
    """

    max_size: int
    max_queue: int
    ping_interval: float
    ping_timeout: float
    per_message_deflate: bool
    disconnect_timeout: float
    access_log: bool

    @classmethod
    def from_config(cls, config: Config) -> WebSocketSettings:
        """The settings of ``config`` (already validated by ``Config``)."""
        return cls(
            max_size=config.ws_max_size,
            max_queue=config.ws_max_queue,
            ping_interval=config.ws_ping_interval,
            ping_timeout=config.ws_ping_timeout,
            per_message_deflate=config.ws_per_message_deflate,
            disconnect_timeout=config.disconnect_timeout,
            access_log=config.access_log,
        )
