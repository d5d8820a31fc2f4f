"""A Flask app (WSGI, PEP 3333) served by trio-asgi on Trio worker threads.

Run it from the repository root (``pip install flask`` first)::

    trio-asgi --app-dir examples --interface wsgi flask_app:app

and, in another terminal::

    curl http://127.0.0.1:8000/hello/trio                   # {"hello": "trio"}
    curl -N 'http://127.0.0.1:8000/count?to=5'              # 0 to 4, one line each
    curl -F upload=@README.md http://127.0.0.1:8000/upload  # the file's name and size

Each request runs in one of ``--wsgi-threads`` worker threads (default 10). ``/count``
streams: each line is sent as the generator yields it, and if the client leaves, the
server stops the generator (its ``finally`` runs). An uploaded file is read from the
connection as Flask parses the form, never held in memory whole by the server.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import Flask, Response, jsonify, request, stream_with_context

app = Flask(__name__)


@app.get("/hello/<name>")
def hello(name: str) -> Response:
    return jsonify(hello=name)


@app.get("/count")
def count() -> Response:
    to = request.args.get("to", default=10, type=int)

    @stream_with_context
    def lines() -> Iterator[str]:
        for n in range(to):
            yield f"{n} of {request.args.get('to', 10)}\n"  # request is usable inside

    return Response(lines(), mimetype="text/plain")


@app.post("/upload")
def upload() -> Response:
    file = request.files["upload"]
    size = 0
    while chunk := file.stream.read(64 * 1024):
        size += len(chunk)
    return jsonify(name=file.filename, size=size, note=request.form.get("note"))
