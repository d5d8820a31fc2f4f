"""How the server calls apps that are not ASGI 3 callables on Trio: each adapter is itself
an ASGI 3 app, so the server's one app boundary (``_app.call_app``) serves it unchanged.

- ``pep3333.py``: PEP 3333's rules as values (the ``environ``, ``wsgi.input`` over a fetch
  callable, ``start_response``, ``wsgi.errors``, ``wsgi.file_wrapper``), no trio (pure);
- ``wsgi.py``: :class:`~trio_asgi._interfaces.wsgi.WSGIAdapter`, a WSGI app on Trio threads.
"""
