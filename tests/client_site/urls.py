from django.urls import path

from tests.client_site import views

urlpatterns = [
    path("page/", views.page, name="page"),
    path("template-response/", views.template_response),
    path("scope/", views.scope),
    path("users/", views.users),
    path("users/create/", views.create_user),
    path("whoami/", views.whoami),
    path("session/set/", views.session_set),
    path("session/get/", views.session_get),
    path("go/", views.go),
    path("protected/", views.protected),
    path("boom/", views.boom),
    path("sync-stream/", views.sync_stream),
    path("async-stream/", views.async_stream),
    path("post-json/", views.post_json),
    path("csrf-token/", views.csrf_token),
    path("unprotected/", views.unprotected),
]
