"""The URLs merchants give invoicing: checkout redirects (followed by the subscriber's browser)
and webhook endpoints (fetched by invoicing itself, so they must not reach internal services)."""

import re
from urllib.parse import urlsplit

from invoicing_svc.domain.addresses import is_public, literal_address
from service_kit.errors import InvalidArgument

_HTTP_URL = re.compile(r"^https?://[^\s]{1,2000}$")
# Names that only ever mean this host or a private network (RFC 6761, 6762, 8375; cloud
# metadata services such as metadata.google.internal).
_INTERNAL_NAMES = ("localhost", "localdomain", "local", "internal", "home.arpa")


def require_http_url(url: str, field: str) -> str:
    if not _HTTP_URL.match(url):
        raise InvalidArgument(f"{field} must be an http(s) URL", field=field)
    return url


def _is_internal_name(name: str) -> bool:
    # A name without a dot is completed by the resolver's search domains: internal by design.
    return "." not in name or any(
        name == internal or name.endswith("." + internal) for internal in _INTERNAL_NAMES
    )


def webhook_url_problem(url: str, *, allow_http: bool, allow_private: bool) -> str | None:
    """Why invoicing must not POST to `url`, or None. Checked at registration and again before
    every send; the address a name resolves to is checked when connecting."""
    if not _HTTP_URL.match(url) or not url.isascii() or "\\" in url:
        return "must be an http(s) URL in ASCII (international names in punycode)"
    parts = urlsplit(url)
    if parts.scheme != "https" and not allow_http:
        return "must use https"
    if "@" in parts.netloc:
        return "must not carry credentials"
    try:
        parts.port  # noqa: B018 - parsing it is the check
        host = (parts.hostname or "").removesuffix(".")
        address = literal_address(host)
    except ValueError:
        return "must name a valid host and port"
    if not host or not all(c.isalnum() or c in "-._:" for c in host):
        return "must name a valid host and port"
    if allow_private:
        return None
    if address is not None and not is_public(address):
        return "must not point at a loopback, private, link-local or reserved address"
    if address is None and _is_internal_name(host):
        return "must name a public host"
    return None


def require_webhook_url(url: str, field: str, *, allow_http: bool, allow_private: bool) -> str:
    problem = webhook_url_problem(url, allow_http=allow_http, allow_private=allow_private)
    if problem is not None:
        raise InvalidArgument(f"{field} {problem}", field=field)
    return url
