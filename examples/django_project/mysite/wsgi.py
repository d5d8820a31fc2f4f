"""The example Django project as a WSGI app, served by trio-asgi on worker threads.

Run it from the repository root (``pip install django`` first)::

    trio-asgi --app-dir examples/django_project --interface wsgi mysite.wsgi:application

and, in another terminal::

    curl http://127.0.0.1:8000/                      # Hello from Django at /
    curl -N 'http://127.0.0.1:8000/stream/?lines=3'  # three lines, streamed
    open http://127.0.0.1:8000/admin/login/           # the admin's login page, with its CSS

Logging in needs the database first (mysite/settings.py): ``python
examples/django_project/manage.py migrate`` and ``... createsuperuser``.

``StaticFilesHandler`` serves ``/static/`` from the installed apps (the admin's CSS), as
``runserver`` does in development; everything else goes to Django.
"""

import os

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = StaticFilesHandler(get_wsgi_application())
