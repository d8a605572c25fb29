"""The browser pages (GraphiQL, the API docs) and the packaged assets they load.

Assets live in ``mindharbor/web/static`` (see its README for provenance) and are served under
``/static`` by the server itself: the playground must work with no network beyond the server.
Pages carry their configuration in data attributes, so no inline script is needed and the
Content-Security-Policy can allow scripts from this origin only.
"""

from __future__ import annotations

import html
from pathlib import Path

from starlette.responses import HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

import mindharbor

STATIC_DIR = Path(mindharbor.__file__).parent / "web" / "static"
STATIC_PREFIX = "/static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def static_mount() -> Mount:
    return Mount(STATIC_PREFIX, app=StaticFiles(directory=STATIC_DIR), name="static")


def asset_page(
    title: str, root_id: str, data: dict[str, str], styles: list[str], scripts: list[str]
) -> HTMLResponse:
    """An HTML shell: local stylesheets, a root element with ``data-*`` config, local scripts."""
    attrs = " ".join(f'data-{k}="{html.escape(v, quote=True)}"' for k, v in data.items())
    links = "\n".join(
        f'<link rel="stylesheet" href="{STATIC_PREFIX}/{html.escape(s)}">' for s in styles
    )
    tags = "\n".join(f'<script src="{STATIC_PREFIX}/{html.escape(s)}"></script>' for s in scripts)
    page = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{links}\n</head><body>\n"
        f'<div id="{root_id}" {attrs}>Loading…</div>\n{tags}\n</body></html>\n'
    )
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": CSP,
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


def graphiql_page(endpoint: str, app_id: str) -> HTMLResponse:
    return asset_page(
        "MindHarbor GraphQL",
        "graphiql",
        {"endpoint": endpoint, "app-id": app_id},
        ["graphiql/graphiql.min.css", "graphiql/page.css"],
        [
            "graphiql/react.production.min.js",
            "graphiql/react-dom.production.min.js",
            "graphiql/graphiql.min.js",
            "graphiql/init.js",
        ],
    )


def docs_page(spec_url: str, app_id: str) -> HTMLResponse:
    return asset_page(
        "MindHarbor REST API",
        "swagger-ui",
        {"spec-url": spec_url, "app-id": app_id},
        ["swagger-ui/swagger-ui.css"],
        ["swagger-ui/swagger-ui-bundle.js", "swagger-ui/init.js"],
    )


def wants_html(accept: str) -> bool:
    """A browser navigating here (Accept lists text/html before any JSON type)."""
    accept = accept.lower()
    if "text/html" not in accept:
        return False
    json_at = min(
        (accept.find(t) for t in ("application/json", "graphql") if t in accept), default=-1
    )
    return json_at == -1 or accept.find("text/html") < json_at
