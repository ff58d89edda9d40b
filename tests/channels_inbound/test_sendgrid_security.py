"""The shared webhook security cases (tests/channels_inbound/security.py) for both SendGrid hooks.

* ``inbound`` (Inbound Parse) has no signature: the channel's HTTP Basic credentials
  (``config["inbound_basic_auth"]``) stand in for one. Raw MIME (with an attachment) and parsed mode.
* ``events`` (Event Webhook): ECDSA P-256 over timestamp + body, checked with the channel's
  ``event_webhook_public_key``; the batch moves an outbound message (status, engagement) and opts its
  recipient out (hard bounce), so a replay that applied twice would show.
"""

from __future__ import annotations

import json
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone

from customers.services import Identifier, customer_resolve
from engagement.models import Channel, Interaction
from tests import factories
from tests.channels_inbound.security import WebhookRequest, WebhookSecurityCases
from tests.conftest import PAYLOADS
from tests.fakes.sendgrid_server import (
    INBOUND_PASSWORD,
    INBOUND_USER,
    FakeSendGrid,
    basic_auth,
    keypair,
    multipart_body,
    sample_to_crlf,
    sendgrid_channel,
    signed_event_headers,
)

RECIPIENT = "recipient@example.com"
SG_MESSAGE_ID = "wrfRRvF7Q0GgwUo2CvDmEA"


class SendGridSecurity(WebhookSecurityCases):
    @pytest.fixture
    def security_channel(self, workspace, fake_sendgrid: FakeSendGrid) -> Channel:
        self.private_keys: dict[str, ec.EllipticCurvePrivateKey] = {
            fake_sendgrid.public_key_b64: fake_sendgrid.private_key
        }
        return sendgrid_channel(workspace, fake_sendgrid)

    def other_channel(self, channel: Channel) -> Channel:
        """Another workspace's SendGrid channel: its own Parse password (same user name) and event key."""
        private, public_b64 = keypair()
        self.private_keys[public_b64] = private
        return Channel.objects.create(
            workspace=factories.workspace_create(),
            kind="email",
            provider="sendgrid",
            name="theirs",
            address="support@theirs.example.com",
            config={
                **channel.config,
                "inbound_basic_auth": {"username": INBOUND_USER, "password": "their-parse-password-987"},
                "event_webhook_public_key": public_b64,
            },
        )


class InboundParseSecurity(SendGridSecurity):
    hook = "inbound"
    signature_header = "Authorization"
    max_body_setting = "EMAIL_INBOUND_MAX_BYTES"

    def sign(self, channel: Channel, url: str, request: WebhookRequest) -> dict[str, str]:
        creds = channel.config["inbound_basic_auth"]
        return {"Authorization": basic_auth(creds["username"], creds["password"])}

    def bad_signature(self, channel: Channel, url: str, request: WebhookRequest) -> dict[str, str]:
        assert channel.config["inbound_basic_auth"]["username"] == INBOUND_USER
        return {"Authorization": basic_auth(INBOUND_USER, INBOUND_PASSWORD + "-wrong")}


class TestInboundRawMime(InboundParseSecurity):
    def request(self, channel: Channel) -> WebhookRequest:
        msg = EmailMessage(policy=SMTP)
        msg["From"] = "Ada Lovelace <ada@example.org>"
        msg["To"] = channel.address
        msg["Subject"] = "Invoice question"
        msg["Message-ID"] = make_msgid(domain="example.org")
        msg.set_content("Hello, the attached invoice does not match my order.")
        msg.add_alternative("<p>Hello, the attached invoice does not match my order.</p>", subtype="html")
        msg.add_attachment(b"%PDF-1.7\n" + bytes(range(256)) * 8, "application", "pdf", filename="inv.pdf")
        body, content_type = multipart_body(
            {
                "email": msg.as_bytes(),
                "to": channel.address,
                "from": str(msg["From"]),
                "subject": str(msg["Subject"]),
                "envelope": json.dumps({"to": [channel.address], "from": "ada@example.org"}),
                "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}),
                "SPF": "pass",
            }
        )
        return WebhookRequest(body=body, content_type=content_type)


class TestInboundParsedFields(InboundParseSecurity):
    def request(self, channel: Channel) -> WebhookRequest:
        # The recorded default-mode sample (no Message-ID: deduplicated on a hash of its content).
        text = (PAYLOADS / "sendgrid_inbound_parse_default.txt").read_text().split("\n", 1)[1]
        return WebhookRequest(body=sample_to_crlf(text), content_type="multipart/form-data; boundary=xYzZY")


class TestEventWebhook(SendGridSecurity):
    hook = "events"
    signature_header = "X-Twilio-Email-Event-Webhook-Signature"
    max_body_setting = "EMAIL_EVENTS_MAX_BYTES"

    def prepare(self, channel: Channel) -> None:
        customer, _ = customer_resolve(workspace=channel.workspace, identifier=Identifier("email", RECIPIENT))
        now = timezone.now()
        Interaction.objects.create(
            workspace=channel.workspace,
            customer=customer,
            channel=channel,
            direction="outbound",
            body="hello",
            customer_address=RECIPIENT,
            status="sent",
            status_changed_at=now,
            provider_message_id=SG_MESSAGE_ID,
            created_at=now,
        )

    def request(self, channel: Channel) -> WebhookRequest:
        common = {"email": RECIPIENT, "sg_message_id": f"{SG_MESSAGE_ID}.filter0425p1mdw1.13037.0"}
        events = [
            {**common, "event": "delivered", "sg_event_id": "sec-delivered", "timestamp": 1700000000},
            {
                **common,
                "event": "click",
                "sg_event_id": "sec-click",
                "timestamp": 1700000060,
                "url": "https://example.com/offer",
            },
            {
                **common,
                "event": "bounce",
                "type": "bounce",
                "status": "5.1.1",
                "reason": "no such user",
                "sg_event_id": "sec-bounce",
                "timestamp": 1700000120,
            },
        ]
        return WebhookRequest(body=(json.dumps(events) + "\r\n").encode(), content_type="application/json")

    def sign(self, channel: Channel, url: str, request: WebhookRequest) -> dict[str, str]:
        private = self.private_keys[channel.config["event_webhook_public_key"]]
        return signed_event_headers(private, request.body)

    def bad_signature(self, channel: Channel, url: str, request: WebhookRequest) -> dict[str, str]:
        # Well-formed (base64 DER ECDSA over the same timestamp and body) but made with another key.
        stranger, _ = keypair()
        return signed_event_headers(stranger, request.body)
