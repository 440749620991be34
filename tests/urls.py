from django.urls import path

from tests import views

urlpatterns = [
    path("", views.hello),
    path("sync/", views.sync_hello),
    path("state/", views.state),
    path("thread/", views.thread_name),
    path("stream/", views.streaming),
    path("sync-stream/", views.sync_streaming),
    path("boom/", views.boom),
    path("cookie/", views.cookie),
    path("echo/", views.echo_headers),
    path("json/", views.echo_json),
]
