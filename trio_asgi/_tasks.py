"""The task tree as one table: every task trio-asgi starts, where it runs, and what it does.

Every ``start_soon``/``start`` in the package names its task from this table
(``name=CONNECTION.name``), and docs/architecture.md's drawing of the tree is
:func:`render_tree` of it (``python -m trio_asgi._tasks`` prints it; a test fails when the
doc and the table differ). Besides the tasks, the table has the nurseries and cancel scopes
they run in, so the drawing shows the whole structure: a node's ``parent`` is the node it
runs inside.

Sans-IO: nothing here imports trio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["NODES", "TaskRole", "render_tree"]


@dataclass(frozen=True)
class TaskRole:
    """One node of the task tree.

    Attributes:
        key: a short identifier, unique in :data:`NODES` (what ``parent`` refers to).
        label: the node in the drawing, e.g. ``"trio-asgi reader", in the read cancel scope``.
        code: where it is, e.g. ``HTTP11Connection._read_loop``.
        parent: the key of the node it runs inside; ``None`` for the root.
        name: the Trio task name (``trio.lowlevel.current_task().name``) for a task; ``""``
            for a nursery, a cancel scope, or a task run in its parent's body.
    """

    key: str
    label: str
    code: str
    parent: str | None
    name: str = ""


def _task(key: str, name: str, label: str, code: str, parent: str) -> TaskRole:
    return TaskRole(key, f'"{name}", {label}' if label else f'"{name}"', code, parent, name)


SERVE: Final = TaskRole("serve", "serve(app, config)", "_serve.py  serve()", None)
ASYNCIO_LOOP: Final = TaskRole(
    "asyncio_loop",
    'with loop="asyncio" only: the asyncio loop (trio_asyncio.open_loop(), its tasks run the '
    "app's asyncio tasks), around the root nursery",
    "AsyncioBridge.open_loop",
    "serve",
)
ROOT: Final = TaskRole("root", "root nursery", "_Server._run", "serve")
SHUTDOWN_WATCHER: Final = _task(
    "watcher",
    "trio-asgi shutdown watcher",
    "awaits shutdown_trigger(), then cancels the startup and accept scopes",
    "_Server._watch_for_shutdown",
    "root",
)
TLS_RELOADER: Final = _task(
    "tls_reloader",
    "trio-asgi tls reloader",
    "with TLS files and a reload_trigger (SIGHUP): each time it returns, reads them again "
    "in a worker thread",
    "_Server._reload_tls",
    "root",
)
LIFESPAN: Final = _task(
    "lifespan",
    "trio-asgi lifespan",
    "app(lifespan scope), started with root.start() inside the startup scope",
    "Lifespan.run",
    "root",
)
CONNECTIONS: Final = TaskRole(
    "connections",
    "connections nursery: its deadline is set when graceful shutdown begins",
    "_Server._serve_connections",
    "root",
)
ACCEPT_SCOPE: Final = TaskRole(
    "accept_scope", "accept cancel scope, then the accepting nursery", "_Server.accept_scope",
    "connections",
)  # fmt: skip
ACCEPT_LOOP: Final = _task(
    "accept",
    "trio-asgi accept loop",
    "one per listening socket; accepts in batches",
    "_net.listeners.accept_loop",
    "accept_scope",
)
CONNECTION: Final = _task(
    "connection",
    "trio-asgi connection",
    "one per accepted socket: the connection nursery; closes the transport",
    "_connection.handle_connection",
    "connections",
)
READER: Final = _task(
    "reader",
    "trio-asgi reader",
    "in the read cancel scope: bytes -> parser -> request events; after an upgrade, frames",
    "HTTP11Reader._read_loop",
    "connection",
)
APP: Final = _task(
    "app",
    "trio-asgi app",
    "one per request, in that request's cancel scope, from a copy of the app context",
    "RequestCycle.run_app",
    "connection",
)
WEBSOCKET_APP: Final = _task(
    "websocket_app",
    "trio-asgi websocket app",
    "after an upgrade: app(websocket scope), in the session's cancel scope",
    "WebSocketSession.run_app",
    "connection",
)
WEBSOCKET_KEEPALIVE: Final = _task(
    "keepalive",
    "trio-asgi websocket keepalive",
    "after accept, when ws_ping_interval > 0: pings, in the ping scope",
    "WebSocketProtocol.keepalive",
    "connection",
)
CLOSING: Final = _task(
    "closing",
    "trio-asgi closing",
    "short-lived: a FIN that cannot go out at once, the answer to a refused pipelined "
    "request, or a WebSocket's close frame at shutdown",
    "_send_fin, _reject_pending, _close_for_shutdown",
    "connection",
)
REFUSAL: Final = _task(
    "refusal",
    "trio-asgi refusal",
    "one per connection past max_connections: a 503, then close",
    "_connection.refuse_connection",
    "connections",
)
LIFESPAN_SHUTDOWN: Final = TaskRole(
    "lifespan_shutdown",
    "then, once the connections nursery has closed: lifespan shutdown",
    "Lifespan.shutdown",
    "root",
)

#: Every node, parents before their children, siblings in drawing order.
NODES: Final = (
    SERVE,
    ASYNCIO_LOOP,
    ROOT,
    SHUTDOWN_WATCHER,
    TLS_RELOADER,
    LIFESPAN,
    CONNECTIONS,
    ACCEPT_SCOPE,
    ACCEPT_LOOP,
    CONNECTION,
    READER,
    APP,
    WEBSOCKET_APP,
    WEBSOCKET_KEEPALIVE,
    CLOSING,
    REFUSAL,
    LIFESPAN_SHUTDOWN,
)

_LABEL_WIDTH: Final = 60  # characters of tree and label before the code column


def render_tree(nodes: tuple[TaskRole, ...] = NODES) -> str:
    """The tree as text: box-drawing branches, each label (wrapped) with its code beside it.

    Raises:
        ValueError: a node's parent is not an earlier node, or two nodes share a key.
    """
    keys: set[str] = set()
    children: dict[str | None, list[TaskRole]] = {}
    for node in nodes:
        if node.key in keys:
            raise ValueError(f"task tree: two nodes are called {node.key!r}")
        if node.parent is not None and node.parent not in keys:
            raise ValueError(f"task tree: {node.key!r} comes before its parent {node.parent!r}")
        keys.add(node.key)
        children.setdefault(node.parent, []).append(node)
    lines: list[str] = []

    def draw(node: TaskRole, lead: str, branch: str, below: str) -> None:
        kids = children.get(node.key, [])
        # Continuation lines of a label sit under its first word, or past the bar that runs
        # down to its children.
        more = lead + below + ("│   " if kids else "")
        width = _LABEL_WIDTH - len(more)
        parts: list[str] = []
        for word in node.label.split():
            if parts and len(parts[-1]) + 1 + len(word) <= width:
                parts[-1] += " " + word
            else:
                parts.append(word)
        for index, part in enumerate(parts):
            if index == 0:
                lines.append((lead + branch + part).ljust(_LABEL_WIDTH) + "  " + node.code)
            else:
                lines.append(more + part)
        for index, kid in enumerate(kids):
            last = index == len(kids) - 1
            draw(kid, lead + below, "└── " if last else "├── ", "    " if last else "│   ")

    for root in children.get(None, []):
        draw(root, "", "", "")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_tree(), end="")
