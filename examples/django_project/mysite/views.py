"""The example's two views: a plain one, and one that streams its body line by line.

The stream is a plain generator under WSGI and an async one under ASGI: Django's ASGI
handler reads a sync iterator to its end before sending any of it (with a warning,
"StreamingHttpResponse must consume synchronous iterators"), so it would not stream.
"""

from collections.abc import AsyncIterator, Iterator

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse

MAX_LINES = 10_000


def hello(request: HttpRequest) -> HttpResponse:
    """``Hello from Django``, and the path Django saw."""
    return HttpResponse(f"Hello from Django at {request.path}\n", content_type="text/plain")


def stream(request: HttpRequest) -> HttpResponse:
    """``?lines=N`` lines (default 5), each sent as the generator yields it (chunked)."""
    try:
        lines = int(request.GET.get("lines", "5"))
    except ValueError:
        return HttpResponseBadRequest("lines must be an integer\n")
    if not 0 <= lines <= MAX_LINES:
        return HttpResponseBadRequest(f"lines must be between 0 and {MAX_LINES}\n")

    def numbered() -> Iterator[str]:
        for n in range(lines):
            yield f"line {n + 1} of {lines}\n"

    async def numbered_async() -> AsyncIterator[str]:
        for line in numbered():
            yield line

    content = numbered_async() if isinstance(request, ASGIRequest) else numbered()
    return StreamingHttpResponse(content, content_type="text/plain")
