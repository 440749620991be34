from django.urls import path

from tests import auth_views

urlpatterns = [
    path("sync/", auth_views.whoami_sync),
    path("async/", auth_views.whoami_async),
    path("api/sync/", auth_views.whoami_sync),
    path("api/async/", auth_views.whoami_async),
]
