"""Which webhook URLs invoicing may POST to: pure rules, no I/O. Every spelling of an internal
address is refused (decimal, hex, octal, short forms, IPv4 inside IPv6, trailing dots), as are
internal names, credentials in the URL, other schemes and (by default) plain http."""

import pytest

from invoicing_svc.domain.addresses import is_public, literal_address
from invoicing_svc.domain.urls import require_http_url, webhook_url_problem

INTERNAL = "must not point at a loopback, private, link-local or reserved address"
NAME = "must name a public host"
MALFORMED = "must name a valid host and port"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://127.0.0.1/hooks", INTERNAL),
        ("https://127.0.0.1./hooks", INTERNAL),
        ("https://127.1/", INTERNAL),
        ("https://2130706433/", INTERNAL),
        ("https://0x7f000001/", INTERNAL),
        ("https://0x7f.1/", INTERNAL),
        ("https://0177.0.0.1/", INTERNAL),
        ("https://017700000001/", INTERNAL),
        ("https://[::1]/", INTERNAL),
        ("https://[::ffff:127.0.0.1]/", INTERNAL),
        ("https://[::ffff:7f00:1]/", INTERNAL),
        ("https://[2002:a9fe:a9fe::]/", INTERNAL),  # 6to4 of 169.254.169.254
        ("https://[64:ff9b::c0a8:101]/", INTERNAL),  # NAT64 of 192.168.1.1
        ("https://169.254.169.254/latest/meta-data/", INTERNAL),
        ("https://10.0.0.8:8443/", INTERNAL),
        ("https://172.16.4.1/", INTERNAL),
        ("https://192.168.1.1/", INTERNAL),
        ("https://100.64.0.1/", INTERNAL),
        ("https://[fd12:3456::1]/", INTERNAL),
        ("https://[fe80::1]/", INTERNAL),
        ("https://224.0.0.251/", INTERNAL),
        ("https://[ff02::1]/", INTERNAL),
        ("https://0.0.0.0/", INTERNAL),
        ("https://0/", INTERNAL),
        ("https://[::]/", INTERNAL),
        ("https://240.0.0.1/", INTERNAL),
        ("https://255.255.255.255/", INTERNAL),
        ("https://localhost/", NAME),
        ("https://LOCALHOST./", NAME),
        ("https://api.localhost/", NAME),
        ("https://metadata.google.internal/computeMetadata/v1/", NAME),
        ("https://db.internal/", NAME),
        ("https://printer.local/", NAME),
        ("https://metadata/", NAME),
        ("https://1.2.3.4.5/", MALFORMED),
        ("https://256.1.1.1/", MALFORMED),
        ("https://0x1g.0.0.1/", MALFORMED),
        ("https://hooks.example.com:99999/", MALFORMED),
        ("https://%6c%6fcalhost/", MALFORMED),
        ("https://[fe80::1%25eth0]/", MALFORMED),
        ("https://user:pass@hooks.example.com/", "must not carry credentials"),
        ("https://hooks.example.com@127.0.0.1/", "must not carry credentials"),
        ("http://hooks.example.com/", "must use https"),
        (
            "ftp://hooks.example.com/",
            "must be an http(s) URL in ASCII (international names in punycode)",
        ),
        (
            "https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/",  # fullwidth
            "must be an http(s) URL in ASCII (international names in punycode)",
        ),
        (
            "https://hooks.example.com\\@127.0.0.1/",
            "must be an http(s) URL in ASCII (international names in punycode)",
        ),
    ],
)
def test_internal_or_unsafe_webhook_urls_are_refused(url: str, problem: str) -> None:
    assert webhook_url_problem(url, allow_http=False, allow_private=False) == problem


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.merchant.example/billing",
        "https://hooks.merchant.example.:8443/x?y=1",
        "https://93.184.216.34/",
        "https://[2606:4700:4700::1111]/",
        "https://xn--bcher-kva.example/",
    ],
)
def test_public_https_webhook_urls_are_accepted(url: str) -> None:
    assert webhook_url_problem(url, allow_http=False, allow_private=False) is None


def test_local_development_settings_allow_a_receiver_on_this_machine() -> None:
    url = "http://127.0.0.1:8123/hooks"
    assert webhook_url_problem(url, allow_http=True, allow_private=False) == INTERNAL
    assert webhook_url_problem(url, allow_http=False, allow_private=True) == "must use https"
    assert webhook_url_problem(url, allow_http=True, allow_private=True) is None
    # Credentials stay refused, whatever the settings.
    assert (
        webhook_url_problem("http://u:p@localhost/", allow_http=True, allow_private=True)
        == "must not carry credentials"
    )


@pytest.mark.parametrize(
    ("host", "address", "public"),
    [
        ("2130706433", "127.0.0.1", False),
        ("0x7f.0.0.1", "127.0.0.1", False),
        ("10.1", "10.0.0.1", False),
        ("192.168.257", "192.168.1.1", False),
        ("8.8.8.8", "8.8.8.8", True),
        ("::ffff:8.8.8.8", "::ffff:808:808", False),
        ("2002:808:808::", "2002:808:808::", True),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:4136:e378:8000:63bf:3fff:fdd2", False),
    ],
)
def test_literal_addresses_are_read_as_resolvers_read_them(
    host: str, address: str, public: bool
) -> None:
    literal = literal_address(host)
    assert literal is not None
    assert (str(literal), is_public(literal)) == (address, public)


def test_checkout_redirects_keep_their_plain_http_url_rule() -> None:
    # Followed by the subscriber's browser, not fetched by us: no address rule applies.
    assert require_http_url("http://localhost:3000/ok", "session.success_url") == (
        "http://localhost:3000/ok"
    )
