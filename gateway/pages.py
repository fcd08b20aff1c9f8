"""What the hosted pages share: their templates (Jinja2, every value escaped), their stylesheet
and wallet script (package data under gateway/static, served by the gateway: no external asset),
the headers that lock each page to its own origin, and the QR code of a payment request."""

import io
from typing import Any

import jinja2
import segno
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from markupsafe import Markup

STATIC = "/static"
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("gateway", "templates"), autoescape=True
)
# Scripts, styles and requests of the page's own origin only; no inline script or handler runs.
# No form-action: the checkout form's answer redirects to the merchant's successUrl.
_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _POLICY,
    # The URL holds the unguessable id that opens the page: no link leaks it as a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def static_files() -> StaticFiles:
    return StaticFiles(packages=[("gateway", "static")])


def render(template: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    html = _TEMPLATES.get_template(template).render(context, static=STATIC)
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def qr_code(uri: str) -> Markup:
    """The URI as an inline SVG QR code; segno writes only its own markup."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", xmldecl=False, svgns=True, scale=4)
    return Markup(out.getvalue().decode())
