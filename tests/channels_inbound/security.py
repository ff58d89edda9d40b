"""The security cases every webhook must pass, in one place every provider's tests reuse.

Subclass :class:`WebhookSecurityCases` once per (provider, hook), as anymail's ``WebhookBasicAuthTestCase``
is reused by every ESP's tests::

    class TestTwilioInboundSecurity(TwilioSecurity, WebhookSecurityCases):
        hook = "inbound"

        def payload(self, channel):
            return load_payload("twilio_inbound_sms.txt")

The subclass provides a ``security_channel`` fixture (the channel under test), :meth:`request` (a valid
body for the hook), :meth:`sign` (the provider's signature headers) and :meth:`other_channel` (a channel
of another workspace with other credentials). It may override :meth:`prepare` to create what the hook
refers to (an outbound message for a status callback, a call for a recording callback).

"Signature" is whatever authenticates the hook: an HMAC header (Twilio), an ECDSA signature and its
timestamp (SendGrid's Event Webhook) or HTTP Basic credentials (SendGrid Inbound Parse, which has no
signature). By default a bad signature is :attr:`signature_header` set to a well-formed but wrong value;
a provider whose header must have another shape overrides :meth:`bad_signature`. The oversized case lowers
the setting named by :attr:`max_body_setting`, the limit the provider's hook enforces.

The cases: a valid request is accepted; a bad or missing signature is 403 and stores nothing; five
replays equal one request; a request signed for another workspace's channel, or posted to its URL, is
403; an oversized body is 413 and stores nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from engagement.models import Channel

# Every table a webhook may write to. Replays must leave all of them exactly as one request did.
WATCHED_TABLES = (
    "customers_customer",
    "customers_identity",
    "customers_consentevent",
    "engagement_conversation",
    "engagement_interaction",
    "engagement_attachment",
    "channels_inbound_providerevent",
    "channels_inbound_inboundrequest",
)


def db_snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every watched table, ordered by id (timestamps included: a replay changes nothing)."""
    snap = {}
    with connection.cursor() as cur:
        for table in WATCHED_TABLES:
            cur.execute(f"SELECT * FROM {table} ORDER BY id")  # noqa: S608 - fixed table names
            snap[table] = [tuple(str(v) for v in row) for row in cur.fetchall()]
    return snap


def stored_counts() -> dict[str, int]:
    return {table: len(rows) for table, rows in db_snapshot().items()}


@dataclass(frozen=True)
class WebhookRequest:
    body: bytes
    content_type: str
    query: str = ""
    extra_headers: dict[str, str] = field(default_factory=dict)


class WebhookSecurityCases:
    """Mixin of the shared webhook security tests. See the module docstring."""

    hook: str = ""
    signature_header: str = ""
    # The setting holding the hook's body limit (see the adapter's ``max_body_bytes``).
    max_body_setting: str = "WEBHOOK_MAX_BODY_BYTES"
    # Hooks whose valid request legitimately writes nothing (e.g. a TwiML-only voice menu) set False.
    writes_on_success: bool = True

    # -- provided by the provider's subclass
    def request(self, channel: Channel) -> WebhookRequest:
        raise NotImplementedError

    def sign(self, channel: Channel, url: str, request: WebhookRequest) -> dict[str, str]:
        raise NotImplementedError

    def other_channel(self, channel: Channel) -> Channel:
        raise NotImplementedError

    def prepare(self, channel: Channel) -> None:
        """Create what the hook refers to before it is called (default: nothing)."""

    def bad_signature(self, channel: Channel, url: str, request: WebhookRequest) -> dict[str, str]:
        """Headers that look like the provider's but do not authenticate ``request`` for ``channel``."""
        headers = self.sign(channel, url, request)
        headers[self.signature_header] = "bm90LXRoZS1zaWduYXR1cmU="
        return headers

    # -- helpers
    def path(self, channel: Channel, request: WebhookRequest) -> str:
        path = f"/webhooks/{channel.provider}/{channel.webhook_token}/{self.hook}/"
        return path + (f"?{request.query}" if request.query else "")

    def post(
        self,
        client: Client,
        channel: Channel,
        request: WebhookRequest,
        *,
        headers: dict[str, str] | None = None,
        signed_for: Channel | None = None,
    ) -> Any:
        path = self.path(channel, request)
        if headers is None:
            signer = signed_for or channel
            headers = self.sign(signer, f"http://testserver{self.path(signer, request)}", request)
        return client.post(
            path,
            data=request.body,
            content_type=request.content_type,
            headers={**request.extra_headers, **headers},
        )

    # -- the cases
    @pytest.mark.django_db
    def test_valid_request_is_accepted(self, client: Client, security_channel: Channel) -> None:
        self.prepare(security_channel)
        before = stored_counts()
        resp = self.post(client, security_channel, self.request(security_channel))
        assert resp.status_code == 200, resp.content
        if self.writes_on_success:
            assert stored_counts() != before

    @pytest.mark.django_db
    def test_bad_signature_is_403_and_stores_nothing(self, client: Client, security_channel: Channel) -> None:
        self.prepare(security_channel)
        before = db_snapshot()
        request = self.request(security_channel)
        headers = self.bad_signature(
            security_channel, f"http://testserver{self.path(security_channel, request)}", request
        )
        resp = self.post(client, security_channel, request, headers=headers)
        assert resp.status_code == 403
        assert db_snapshot() == before

    @pytest.mark.django_db
    def test_missing_signature_is_403_and_stores_nothing(
        self, client: Client, security_channel: Channel
    ) -> None:
        self.prepare(security_channel)
        before = db_snapshot()
        resp = self.post(client, security_channel, self.request(security_channel), headers={})
        assert resp.status_code == 403
        assert db_snapshot() == before

    @pytest.mark.django_db
    def test_replayed_five_times_equals_once(self, client: Client, security_channel: Channel) -> None:
        self.prepare(security_channel)
        request = self.request(security_channel)
        first = self.post(client, security_channel, request)
        assert first.status_code == 200, first.content
        once = db_snapshot()
        for _ in range(5):
            again = self.post(client, security_channel, request)
            assert again.status_code == 200
            assert again.content == first.content
        assert db_snapshot() == once

    @pytest.mark.django_db
    def test_other_workspaces_signature_or_url_is_403(
        self, client: Client, security_channel: Channel
    ) -> None:
        self.prepare(security_channel)
        other = self.other_channel(security_channel)
        assert other.workspace_id != security_channel.workspace_id
        before = db_snapshot()
        request = self.request(security_channel)
        # Signed for the other workspace's channel, posted to ours.
        assert self.post(client, security_channel, request, signed_for=other).status_code == 403
        # Signed for ours, posted to the other workspace's URL.
        headers = self.sign(
            security_channel, f"http://testserver{self.path(security_channel, request)}", request
        )
        assert self.post(client, other, request, headers=headers).status_code == 403
        assert db_snapshot() == before

    @pytest.mark.django_db
    def test_oversized_request_is_413_and_stores_nothing(
        self, client: Client, security_channel: Channel, settings: Any
    ) -> None:
        self.prepare(security_channel)
        request = self.request(security_channel)
        setattr(settings, self.max_body_setting, max(len(request.body) - 1, 1))
        before = db_snapshot()
        resp = self.post(client, security_channel, request)
        assert resp.status_code == 413
        assert db_snapshot() == before
