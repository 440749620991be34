from django.urls import path

from example_project import views

urlpatterns = [
    path("", views.home, name="home"),
    path("api/hello/", views.api_hello, name="api-hello"),
    path("api/items/<int:pk>/", views.api_item, name="api-item"),
    path("api/stream/", views.api_stream, name="api-stream"),
]
