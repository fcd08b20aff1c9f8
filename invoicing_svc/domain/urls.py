"""The URLs merchants give invoicing (checkout redirects, webhook endpoints)."""

import re

from service_kit.errors import InvalidArgument

_HTTP_URL = re.compile(r"^https?://[^\s]{1,2000}$")


def require_http_url(url: str, field: str) -> str:
    if not _HTTP_URL.match(url):
        raise InvalidArgument(f"{field} must be an http(s) URL", field=field)
    return url
