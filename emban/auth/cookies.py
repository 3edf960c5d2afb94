"""The console session cookie, set the same way by both edges."""

from __future__ import annotations

from aiohttp import web

from emban.settings import Settings

SESSION_COOKIE = "emban_session"


def set_session_cookie(response: web.StreamResponse, settings: Settings, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_ttl_seconds,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=settings.cookie_secure,
    )


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")
