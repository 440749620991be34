from django.urls import path

from tests.cors_site import views

urlpatterns = [
    path("<str:policy>/data", views.data),
    path("boom/", views.boom),
    path("stream/", views.stream),
    path("vary/", views.vary),
]
