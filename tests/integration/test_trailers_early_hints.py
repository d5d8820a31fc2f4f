"""Tier 3: ``http.response.early_hint`` and ``http.response.trailers`` end to end: the real
server on loopback, a client-side h11 over a TCP socket that reads the ``103 Early Hints``
while the app still waits, then the 200, its chunked body and its trailer section, then a
second response on the same keep-alive connection."""

from __future__ import annotations

from typing import Any

import h11
import trio

from ..helpers import start_server

TIMEOUT = 5  # seconds: the bound on any single wait; a passing test takes far less
LINKS = [b"</style.css>; rel=preload; as=style", b"</app.js>; rel=preload; as=script"]


class Client:
    """A client-side h11 connection over a TCP stream."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    async def request(self, headers: list[tuple[str, str]]) -> None:
        if self.h11.our_state is h11.DONE:
            self.h11.start_next_cycle()
        data = self.h11.send(h11.Request(method="GET", target="/", headers=headers))
        data += self.h11.send(h11.EndOfMessage()) or b""
        await self.stream.send_all(data or b"")

    async def next_event(self) -> Any:
        while (event := self.h11.next_event()) is h11.NEED_DATA:
            self.h11.receive_data(await self.stream.receive_some())
        return event


async def test_early_hints_then_response_with_trailers_over_tcp(nursery: trio.Nursery) -> None:
    hint_read = trio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert "http.response.early_hint" in scope["extensions"]
        await send({"type": "http.response.early_hint", "links": LINKS})
        await hint_read.wait()  # the 103 is on the wire before the response is made
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"trailer", b"x-checksum")],
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": b"hello", "more_body": True})
        await send({"type": "http.response.body", "body": b" world"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})

    server = await start_server(nursery, app)
    with trio.fail_after(TIMEOUT):
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            client = Client(stream)
            await client.request([("host", "t"), ("te", "trailers")])
            hint = await client.next_event()
            assert isinstance(hint, h11.InformationalResponse)
            assert hint.status_code == 103
            assert [value for name, value in hint.headers if name == b"link"] == LINKS
            hint_read.set()
            response = await client.next_event()
            assert isinstance(response, h11.Response)
            assert response.status_code == 200
            body = b""
            while isinstance(event := await client.next_event(), h11.Data):
                body += event.data
            assert body == b"hello world"
            assert isinstance(event, h11.EndOfMessage)
            assert list(event.headers) == [(b"x-checksum", b"abc")]

            # The connection is kept alive once the trailers are sent: the next request is served
            # (hint_read is set: the app goes straight on).
            await client.request([("host", "t")])
            assert (await client.next_event()).status_code == 103
            assert (await client.next_event()).status_code == 200
            while isinstance(event := await client.next_event(), h11.Data):
                pass
            assert isinstance(event, h11.EndOfMessage)
            assert list(event.headers) == []  # no TE: trailers, so dropped
    await server.shutdown()
