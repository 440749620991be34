"""The site behind the django-cors-headers compatibility suite."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie


@csrf_exempt
def data(request: HttpRequest) -> HttpResponse:
    response = JsonResponse({"method": request.method})
    response["X-Total-Count"] = "3"
    return response


@csrf_exempt
def sets_cors(request: HttpRequest) -> HttpResponse:
    """A view that sets its own CORS header (as some views did by hand)."""
    response = HttpResponse(b"own")
    response["Access-Control-Allow-Origin"] = "https://view.example.org"
    return response


@ensure_csrf_cookie
def token(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"token set")


def write(request: HttpRequest) -> HttpResponse:
    """Checked by CsrfViewMiddleware in MIDDLEWARE (a decorator's instance would keep
    the first test's CSRF_TRUSTED_ORIGINS)."""
    return HttpResponse(b"written")


urlpatterns = [
    path("api/data", data),
    path("api/own-cors", sets_cors),
    path("api/token", token),
    path("api/write", write),
    path("other/data", data),
    path("api/slash/", data),
]
