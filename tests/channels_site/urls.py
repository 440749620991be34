from __future__ import annotations

from django.urls import path

from tests.channels_site import views

urlpatterns = [path("page/", views.page), path("who/", views.who), path("state/", views.state)]
