from __future__ import annotations

from django.urls import path

from middleware_stack.contrib.timing.exporters import prometheus_metrics_view
from tests.timing_site import views

urlpatterns = [
    path("healthz", views.healthz),
    path("metrics", prometheus_metrics_view),
    path("items/<int:pk>", views.item),
    path("async-metrics/", views.async_metrics),
    path("sync-metrics/", views.sync_metrics),
    path("stream/", views.stream),
    path("boom/", views.boom),
    path("wait-for-disconnect/", views.wait_for_disconnect),
    path("pid/", views.pid),
    path("demo/", views.demo),
]
