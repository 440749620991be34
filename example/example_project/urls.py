from django.urls import path

from example_project import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("api/hello/", views.api_hello, name="api-hello"),
    path("api/items/<int:pk>/", views.api_item, name="api-item"),
    path("api/stream/", views.api_stream, name="api-stream"),
    path("api/whoami/", views.api_whoami, name="api-whoami"),
    path("api/slow/", views.api_slow, name="api-slow"),
    path("api/fail/", views.api_fail, name="api-fail"),
    path("api/db/", views.api_db, name="api-db"),
]
