"""How the app is called: every interface adapted to the one ASGI 3 boundary.

The server calls one ASGI 3 callable (``_app.call_app``, the lifespan task); each adapter
here is itself an ASGI 3 app, so that boundary serves it unchanged:

- ``detect.py``: the interface read from the app's signature (pure);
- ``asgi2.py``: :class:`~trio_asgi._interfaces.asgi2.ASGI2Adapter`, an ASGI 2 double callable;
- ``pep3333.py``: PEP 3333's rules as values (the ``environ``, ``wsgi.input`` over a fetch
  callable, ``start_response``, ``wsgi.errors``, ``wsgi.file_wrapper``), no trio (pure);
- ``wsgi.py``: :class:`~trio_asgi._interfaces.wsgi.WSGIAdapter`, a WSGI app on Trio threads;
- ``adapt.py``: ``adapt(app, config)`` picks one from ``Config.interface``.
"""
