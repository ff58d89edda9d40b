"""The SSRF guard of outbound webhooks (engagement/webhooks/ssrf.py): what is refused, however spelled."""

from __future__ import annotations

import pytest

from engagement.webhooks.ssrf import WebhookTargetRefused, webhook_target_check


def check(url: str, *, allow_private: bool = False, records: list[str] | None = None) -> str:
    """The address the guard would connect to; ``records`` stand in for DNS answers."""
    resolve = (lambda host, port: records) if records is not None else None
    return webhook_target_check(url=url, allow_private=allow_private, resolve=resolve).address


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://127.9.9.9:8080/hook",
        "http://10.0.0.5/",
        "http://172.16.3.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # RFC 6598 shared address space
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.10.10/",  # link-local
        "http://0.0.0.0/",
        "http://224.0.0.1/",  # multicast
        "http://240.0.0.1/",  # reserved
        "http://255.255.255.255/",
        "http://[::1]/",
        "http://[::]/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",  # AWS IPv6 metadata
        "http://[fc00::5]/",
        "http://[ff02::1]/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:a9fe:a9fe]/",  # the same, in hex
        "http://[2002:7f00:1::]/",  # 6to4 carrying 127.0.0.1
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 carrying 169.254.169.254
        "http://2130706433/",  # 127.0.0.1 in decimal
        "http://0177.0.0.1/",  # octal
        "http://0x7f.0.0.1/",  # hex
        "http://0x7f000001/",
        "http://127.1/",  # short form
        "http://017700000001/",  # octal, one number
        "http://3232235777/",  # 192.168.1.1 in decimal
        "http://localhost:8000/",
    ],
)
def test_non_public_targets_are_refused(url):
    with pytest.raises(WebhookTargetRefused) as info:
        check(url)
    assert info.value.field == "url"
    assert info.value.status == 400


@pytest.mark.parametrize(
    ("records", "why"),
    [
        (["10.1.2.3"], "private"),
        (["127.0.0.1"], "loopback"),
        (["169.254.169.254"], "metadata"),
        (["::1"], "loopback"),
        (["::ffff:10.0.0.1"], "private"),
        (["93.184.216.34", "192.168.0.10"], "private"),  # one bad record among good ones
    ],
)
def test_dns_names_resolving_to_private_addresses_are_refused(records, why):
    with pytest.raises(WebhookTargetRefused, match=why):
        check("https://hooks.example.com/x", records=records)


def test_public_targets_pass_and_the_checked_address_is_the_one_used():
    assert check("https://hooks.example.com/in?x=1", records=["93.184.216.34"]) == "93.184.216.34"
    assert check("https://hooks.example.com/", records=["2606:2800:220:1::1"]) == "2606:2800:220:1::1"
    assert check("http://8.8.8.8/") == "8.8.8.8"
    target = webhook_target_check(
        url="https://Hooks.Example.com:8443/in?x=1", allow_private=False, resolve=lambda h, p: ["1.1.1.1"]
    )
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "hooks.example.com",
        8443,
        "/in?x=1",
    )


def test_development_setting_allows_private_and_loopback_but_never_metadata():
    assert check("http://127.0.0.1:9000/", allow_private=True) == "127.0.0.1"
    assert check("http://10.0.0.5/", allow_private=True) == "10.0.0.5"
    assert check("http://[::1]:9000/", allow_private=True) == "::1"
    for url in ["http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/"]:
        with pytest.raises(WebhookTargetRefused, match="metadata"):
            check(url, allow_private=True)
    with pytest.raises(WebhookTargetRefused, match="link-local"):
        check("http://169.254.1.1/", allow_private=True)
    with pytest.raises(WebhookTargetRefused, match="metadata"):
        check("https://metadata.example/", allow_private=True, records=["169.254.169.254"])


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://93.184.216.34/", "https://"),
        ("file:///etc/passwd", "https://"),
        ("gopher://93.184.216.34/", "https://"),
        ("https://user:pw@93.184.216.34/", "credentials"),
        ("https:///path", "no host"),
        ("https://93.184.216.34:99999/", "valid URL"),
    ],
)
def test_malformed_urls_are_refused(url, why):
    with pytest.raises(WebhookTargetRefused, match=why):
        check(url)


def test_a_name_that_does_not_resolve_is_refused():
    with pytest.raises(WebhookTargetRefused, match="does not resolve"):
        check("https://does-not-exist.invalid/")
