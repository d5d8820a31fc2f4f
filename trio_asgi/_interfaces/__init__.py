"""How the app is called: every interface adapted to the one ASGI 3 boundary.

The server calls one ASGI 3 callable (``_app.call_app``, the lifespan task); the modules here
turn what the user brought into one: ``detect`` reads the interface from the app's signature
(sans-IO), ``asgi2`` wraps an ASGI 2 double callable, ``wsgi`` runs a WSGI app in threads,
and ``adapt`` picks one from ``Config.interface``.
"""
