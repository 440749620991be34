from django.urls import path

from tests.pg_site import views

urlpatterns = [
    path("db/", views.db),
    path("adb/", views.adb),
    path("sleep/", views.sleep),
    path("fail-tx/", views.fail_in_transaction),
    path("tx-state/", views.tx_state),
    path("stats/", views.stats),
    path("dirty/<str:how>/", views.dirty),
    path("db-state/", views.db_state),
    path("slow-body/", views.slow_body),
]
