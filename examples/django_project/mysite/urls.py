"""The example's URLs: two views of its own and the admin."""

from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("", views.hello, name="hello"),
    path("stream/", views.stream, name="stream"),
    path("admin/", admin.site.urls),
]
