"""An ASGI 2 ("double callable") app, class style, as older tutorials write it.

Run it from the repository root::

    trio-asgi --app-dir examples asgi2_app:App

and, in another terminal::

    curl http://127.0.0.1:8000/          # prints: Hello from ASGI 2.0 (started: yes)

ASGI 2 splits the one ASGI 3 call in two: the server first creates the app with the scope,
``App(scope)``, then awaits the instance with ``receive, send``. trio-asgi tells this shape
apart from an ASGI 3 app by its signature (``--interface auto``, the default) and logs one
line, ``Serving the app as ASGI 2: a class whose instances take scope, then receive and
send``; ``--interface asgi2`` says so without looking. The scope it gets says
``scope["asgi"]["version"] == "2.0"``.

The lifespan protocol works as for ASGI 3: the server creates one instance for the
``lifespan`` scope and it answers startup and shutdown; what it puts in ``scope["state"]``
reaches every request's scope.
"""

from typing import Any


class App:
    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope

    async def __call__(self, receive: Any, send: Any) -> None:
        if self.scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif self.scope["type"] == "http":
            await self.http(send)

    async def lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.scope["state"]["started"] = "yes"
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def http(self, send: Any) -> None:
        version = self.scope["asgi"]["version"]
        started = self.scope.get("state", {}).get("started", "no")
        body = f"Hello from ASGI {version} (started: {started})\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
