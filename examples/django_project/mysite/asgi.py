"""The example Django project as an ASGI app: Django's ASGI handler runs on asyncio.

Run it from the repository root (``pip install django '.[asyncio]'`` first)::

    trio-asgi --app-dir examples/django_project --loop asyncio mysite.asgi:application

``--loop asyncio`` runs the app on an asyncio loop hosted inside Trio (trio-asyncio):
Django's ASGI handler is asyncio code, and on Trio itself every request fails (``TypeError:
trio.run received unrecognized yield message``; the server's log then says to add
``--loop asyncio``). The same URLs as mysite/wsgi.py; ``ASGIStaticFilesHandler`` serves
``/static/`` (the admin's CSS) as ``runserver`` does in development.
"""

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = ASGIStaticFilesHandler(get_asgi_application())
