#!/usr/bin/env python
"""Django's command-line utility for the example project (examples/django_project/).

Only needed to log in to the admin: ``python examples/django_project/manage.py migrate``
creates the SQLite database (see ``DATABASES`` in mysite/settings.py), then
``python examples/django_project/manage.py createsuperuser``. Serving it: mysite/wsgi.py
and mysite/asgi.py.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
