"""The starter web views: the patient portal at ``/app/`` and the clinic workspace at
``/clinic/``.

The server only hands out an HTML shell; the views are static files (``web/static/views``) that
talk to the server through the official Parse JS SDK and LiveQuery, like any other client, so
every rule they meet is the server's. The shell carries the configuration in ``data-*``
attributes (no inline script), and a strict Content-Security-Policy allows scripts, styles and
connections from this origin only: the views work with no network beyond the server.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

if TYPE_CHECKING:
    from mindharbor.app import MindHarbor
    from mindharbor.settings import Settings

ASSETS = "/static/views"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
VIEWS = {"app": ("Patient portal", "portal.js"), "clinic": ("Clinic workspace", "clinic.js")}


def _config(settings: Settings, view: str) -> dict[str, str | None]:
    idle = (
        settings.session_idle_minutes_patient
        if view == "app"
        else settings.session_idle_minutes_staff
    )
    return {
        "app-id": settings.app_id,
        "mount": settings.mount_path.rstrip("/"),
        "live-query": (settings.live_query_path or settings.mount_path).rstrip("/") or "/",
        "idle-minutes": str(idle),
        "clinic": settings.clinic_name,
        "emergency": settings.clinic_emergency_instructions,
        "sso-url": settings.oidc_authorize_url if settings.oidc_issuer else None,
        "sso-client": settings.oidc_audience,
        "js-key": settings.javascript_key or "",
    }


def shell(settings: Settings, view: str) -> HTMLResponse:
    """The page of one view: its stylesheet, a root with the configuration, its scripts."""
    title, script = VIEWS[view]
    attrs = " ".join(
        f'data-{k}="{html.escape(v, quote=True)}"'
        for k, v in _config(settings, view).items()
        if v is not None
    )
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f"<title>{html.escape(title)} · {html.escape(settings.clinic_name)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<link rel="stylesheet" href="{ASSETS}/views.css">\n'
        f'<script src="{ASSETS}/vendor/parse.min.js"></script>\n'
        f'<script src="{ASSETS}/vendor/qrcode.js"></script>\n'
        f'<script type="module" src="{ASSETS}/{script}"></script>\n'
        f'</head><body>\n<div id="root" {attrs}><p>Loading…</p></div>\n'
        "<noscript>This page needs JavaScript.</noscript>\n</body></html>\n"
    )
    return HTMLResponse(page, headers=HEADERS)


def routes(server: MindHarbor) -> list[BaseRoute]:
    settings = server.settings

    def page(view: str) -> Route:
        async def endpoint(request: Request) -> Response:
            return shell(settings, view)

        return Route(f"/{view}/", endpoint, methods=["GET"])

    def slash(view: str) -> Route:
        async def endpoint(request: Request) -> Response:
            return RedirectResponse(f"/{view}/", status_code=308)

        return Route(f"/{view}", endpoint, methods=["GET"])

    return [r for view in VIEWS for r in (page(view), slash(view))]
