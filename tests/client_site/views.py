"""Views for the test-client tests."""

from __future__ import annotations

import json
import threading

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.template.response import TemplateResponse
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html", {"name": request.GET.get("name", "world")})


def template_response(request: HttpRequest) -> TemplateResponse:
    return TemplateResponse(request, "page.html", {"name": "lazy"})


async def scope(request: HttpRequest) -> JsonResponse:
    s = request.scope  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "method": s["method"],
            "path": s["path"],
            "raw_path": s["raw_path"].decode(),
            "root_path": s["root_path"],
            "query_string": s["query_string"].decode(),
            "client": list(s["client"]),
            "server": list(s["server"]),
            "scheme": s["scheme"],
            "headers": [[k.decode(), v.decode("latin-1")] for k, v in s["headers"]],
            "marks": s.get("marks", []),
            "body": request.body.decode("latin-1"),
            "request_path": request.path,
            "path_info": request.path_info,
            "GET": request.GET.dict(),
        }
    )


def users(request: HttpRequest) -> JsonResponse:
    """Sync view: the ORM on whatever thread the handler runs sync code on."""
    return JsonResponse(
        {
            "users": sorted(User.objects.values_list("username", flat=True)),
            "thread": threading.get_ident(),
        }
    )


def create_user(request: HttpRequest) -> JsonResponse:
    User.objects.create(username=request.GET["name"])
    return JsonResponse({"created": request.GET["name"]})


async def whoami(request: HttpRequest) -> JsonResponse:
    user = await request.auser()  # type: ignore[attr-defined]
    return JsonResponse({"user": user.get_username() if user.is_authenticated else None})


def session_set(request: HttpRequest) -> HttpResponse:
    request.session["colour"] = request.GET.get("colour", "blue")
    return HttpResponse(b"set")


def session_get(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"colour": request.session.get("colour")})


def go(request: HttpRequest) -> HttpResponse:
    return redirect("/page/?name=redirected")


@csrf_protect
def protected(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"posted")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom from the view")


def sync_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(iter([b"a;", b"b;", b"c;"]), content_type="text/plain")


async def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    async def chunks():  # type: ignore[no-untyped-def]
        for part in (b"x;", b"y;"):
            yield part

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def post_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"got": json.loads(request.body), "type": request.content_type})


@ensure_csrf_cookie
def csrf_token(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"token")


def unprotected(request: HttpRequest) -> HttpResponse:
    """Checked only by CsrfViewMiddleware when MIDDLEWARE has it."""
    return HttpResponse(b"posted")
