"""Settings of the example Django project: the admin, and no database query before a login.

The pages the example serves (``/``, ``/stream/``, the admin's login page and its static
files) run no query: sessions live in signed cookies and an anonymous user needs no table,
so the project serves from a read-only checkout without ``migrate``. Logging in to the admin
needs the ``auth`` tables: ``python examples/django_project/manage.py migrate`` creates them
in the SQLite file named by ``DJANGO_EXAMPLE_DB`` (default: ``trio_asgi_django_example.sqlite3``
in the temporary directory).

Not for production: ``DEBUG`` is on and the secret key is written here.
"""

import os
import tempfile
from pathlib import Path

SECRET_KEY = "django-insecure-trio-asgi-example-only"  # an example: never deploy it
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mysite.wsgi.application"
ASGI_APPLICATION = "mysite.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "DJANGO_EXAMPLE_DB",
            str(Path(tempfile.gettempdir()) / "trio_asgi_django_example.sqlite3"),
        ),
    }
}

SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"

# Served by Django's own static files handler, wrapped around the app in wsgi.py and asgi.py
# (what runserver does in development); a deployment would collect them for a web server.
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
