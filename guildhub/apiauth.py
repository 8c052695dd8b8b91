"""Who is calling a JSON API: the session's user, or the user of an `Authorization: Bearer` token."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, JsonResponse

from guildhub.models import ApiToken


def json_error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def api_user(request: HttpRequest) -> AbstractBaseUser | None:
    """The caller: a request that sends a token is judged by the token alone, else by its session."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, key = header.partition(" ")
        token = ApiToken.objects.authenticate(key.strip()) if scheme.lower() == "bearer" else None
        if token is None:
            return None
        token.touch()
        return token.user
    return request.user if request.user.is_authenticated else None


def api_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """401 JSON (never a redirect to a login page) for anonymous callers; `request.user` is the caller."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = api_user(request)
        if user is None:
            response = json_error(401, "authentication required: log in, or send 'Authorization: Bearer <token>'")
            response["WWW-Authenticate"] = 'Bearer realm="guildhub"'
            return response
        request.user = user
        return view(request, *args, **kwargs)

    return wrapper
