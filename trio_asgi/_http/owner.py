r"""What a request cycle (``exchange.py``) is given: the frozen :class:`ExchangeSettings` it
reads, and the two ``typing.Protocol``\ s through which it talks to the connection it belongs
to: :class:`CycleOwner` (the connection: HTTP/1.1's ``HTTP11Connection`` today) and
:class:`ResponseFraming` (that connection's response writer). A protocol, not an import: the
cycle knows nothing of HTTP/1.1, so an HTTP/2 stream can own one too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .._net.transport import Transport
from .._types import Address

if TYPE_CHECKING:
    from .._config import Config

__all__ = ["CycleOwner", "ExchangeSettings", "ResponseFraming"]


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    """The configuration one request's exchange reads, taken from :class:`~trio_asgi.Config`
    once per server (:meth:`from_config`).

    Attributes:
        max_request_body_size: bytes of request body accepted, or None for no limit (413).
        body_read_timeout: seconds one ``receive()`` waits for body bytes (then 408).
        disconnect_timeout: seconds an app may run on after its client left.
        request_timeout: seconds the app call may take to complete its response (then it
            is cancelled: 504, or an abort); ``math.inf``: no limit.
        access_log: whether a completed response is logged to ``trio_asgi.access``.
    """

    max_request_body_size: int | None
    body_read_timeout: float
    disconnect_timeout: float
    request_timeout: float
    access_log: bool

    @classmethod
    def from_config(cls, config: Config) -> ExchangeSettings:
        return cls(
            max_request_body_size=config.max_request_body_size,
            body_read_timeout=config.body_read_timeout,
            disconnect_timeout=config.disconnect_timeout,
            request_timeout=config.request_timeout,
            access_log=config.access_log,
        )


class ResponseFraming(Protocol):
    """One response's bytes as the protocol frames them (HTTP/1.1's ``ResponseWriter``
    today): the head, each body chunk, the end. ``body`` and ``end`` raise
    :class:`~trio_asgi._http.messages.FramingError` for a body that does not match the
    declared ``Content-Length``."""

    @property
    def head(self) -> bytes:
        """The status line and header section."""

    @property
    def keep_alive(self) -> bool:
        """The connection stays open after this response."""

    @property
    def no_body(self) -> bool:
        """The response has no body (HEAD, 204, 304): body bytes are not sent."""

    def body(self, data: bytes) -> bytes:
        """``data`` framed as the next piece of the body."""

    @property
    def chunked(self) -> bool:
        """The body is chunked: a trailer section can follow it."""

    def frame_around(self, size: int) -> tuple[bytes, bytes]:
        """What goes before and after ``size`` body bytes the transport sends itself."""

    def end(self, trailers: list[tuple[bytes, bytes]] | None = None) -> bytes:
        """What ends the body (the last chunk and ``trailers``, or nothing)."""


class CycleOwner(Protocol):
    """What a :class:`RequestCycle` uses of the connection it belongs to."""

    client: Address | None
    transport: Transport  # writes go straight to it; ``transport.broken``: they cannot succeed
    response_begun: bool  # bytes of this cycle's response went out

    @property
    def closing(self) -> bool:
        """No request will be served after this one (its response says ``close``)."""

    def response_writer(self, status: int, headers: list[tuple[bytes, bytes]]) -> ResponseFraming:
        """The response head's framing for ``status`` and ``headers``. Raises InvalidMessage."""

    async def send_continue(self) -> None:
        """Send ``100 Continue``."""

    async def send_early_hints(self, links: list[bytes]) -> None:
        """Send ``103 Early Hints`` with a ``Link`` header per value of ``links``."""

    def resume_reading(self) -> None:
        """The body buffer has room again: wake the reader."""

    def stop_keep_alive(self) -> None:
        """Serve no request after this one."""

    def response_done(self) -> None:
        """The response is fully written: start the next cycle or begin closing."""

    async def replace_response(self, status: int) -> bool:
        """Send an error response with ``status`` instead of the app's, then close: False
        if the client is gone (the connection is closed then)."""

    async def abort(self) -> None:
        """Close the connection now: a response cut short must not be followed by another."""
