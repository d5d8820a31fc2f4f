"""A minimal Django project served by trio-asgi: WSGI in wsgi.py, ASGI in asgi.py."""
