"""Issue 9, the principle: no authentic provider request is lost.

A request that passes authentication (Twilio signature, SendGrid Basic auth or Event Webhook signature,
the webchat origin and visitor token; a known channel token; the size limit) but cannot be normalized
is answered 2xx, kept as received with the error, listed on the admins' "Unprocessed events" page, and
processed again from there or with ``manage.py inbound_reprocess``. An event whose applying failed
is kept the same way and applies once the cause is gone; one applied meanwhile is not applied twice.
Only a database failure is answered 5xx (the provider retries).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from channels_inbound.models import InboundRequest, ProviderEvent
from channels_inbound.webchat.services import Visitor, visitor_token_issue
from engagement.models import Channel, Interaction, Role, Workspace
from tests import factories
from tests.conftest import load_payload, post_twilio, webhook_path
from tests.fakes.sendgrid_server import (
    INBOUND_PASSWORD,
    INBOUND_USER,
    FakeSendGrid,
    basic_auth,
    multipart_body,
    sendgrid_channel,
    signed_event_headers,
)
from tests.fakes.twilio_server import FakeTwilio
from tests.webchat.conftest import ORIGIN, webchat_channel_create

pytestmark = pytest.mark.django_db

PAGE = "/settings/unprocessed-events/"


@dataclass(frozen=True)
class Case:
    """One endpoint and a correctly authenticated request to it that cannot be normalized."""

    channel_kind: str  # "sms", "voice", "email", "webchat"
    post: Callable[[Client, Channel, Any], Any]
    hook: str
    error: str


def _twilio(hook: str, form: dict[str, str], query: str = "") -> Callable[[Client, Channel, Any], Any]:
    return lambda client, channel, fakes: post_twilio(client, channel, hook, form, query=query)


def _mms_missing_a_media_url() -> dict[str, str]:
    form = dict(load_payload("twilio_inbound_mms.json"))
    form["NumMedia"] = str(int(form["NumMedia"]) + 1)
    return form


def _inbound_parse(fields: dict[str, str | bytes]) -> Callable[[Client, Channel, Any], Any]:
    def post(client: Client, channel: Channel, fakes: Any) -> Any:
        body, content_type = multipart_body(fields)
        return client.post(
            webhook_path(channel, "inbound"),
            data=body,
            content_type=content_type,
            headers={"Authorization": basic_auth(INBOUND_USER, INBOUND_PASSWORD)},
        )

    return post


def _event_webhook(body: bytes) -> Callable[[Client, Channel, Any], Any]:
    def post(client: Client, channel: Channel, fakes: Any) -> Any:
        headers = signed_event_headers(fakes.private_key, body)
        return client.post(
            webhook_path(channel, "events"), data=body, content_type="application/json", headers=headers
        )

    return post


def _webchat_upload(client: Client, channel: Channel, fakes: Any) -> Any:
    token = visitor_token_issue(visitor=Visitor(channel_id=channel.pk, visitor_id="v-unparseable00001"))
    body, content_type = multipart_body(
        {"visitor": token, "client_id": "no!"}, files={"file": ("note.txt", "text/plain", b"hello")}
    )
    return client.generic(
        "POST",
        f"/webchat/{channel.webhook_token}/upload/",
        data=body,
        content_type=content_type,
        headers={"Origin": ORIGIN},
    )


SMS_FORM = {"MessageSid": "SM" + "e" * 32, "From": "+14155550100", "To": "+14155550000", "Body": "hi"}

# Every inbound endpoint, each with a signed request it cannot read.
CASES = {
    "twilio-sms": Case("sms", _twilio("inbound", {**SMS_FORM, "NumMedia": "two"}), "inbound", "NumMedia"),
    "twilio-mms": Case("sms", _twilio("inbound", _mms_missing_a_media_url()), "inbound", "is missing"),
    "twilio-status": Case("sms", _twilio("status", {"MessageSid": "SM1"}), "status", "MessageStatus"),
    "twilio-voice": Case("voice", _twilio("voice", {"From": "+14155550100"}), "voice", "CallSid"),
    "twilio-voice-menu": Case("voice", _twilio("voice-menu", {"Digits": "1"}), "voice-menu", "CallSid"),
    "twilio-voice-dial": Case(
        "voice", _twilio("voice-dial", {"CallSid": "CA1"}), "voice-dial", "DialCallStatus"
    ),
    "twilio-voice-done": Case(
        "voice",
        _twilio(
            "voice-done", {"CallSid": "CA1", "RecordingUrl": "https://x/RE1", "RecordingDuration": "long"}
        ),
        "voice-done",
        "RecordingDuration",
    ),
    "twilio-call-status": Case(
        "voice", _twilio("call-status", {"CallSid": "CA1"}), "call-status", "CallStatus"
    ),
    "twilio-call-status-leg": Case(
        "voice",
        _twilio("call-status", {"CallSid": "CA1", "CallStatus": "completed"}, query="leg=boss"),
        "call-status",
        "leg must be",
    ),
    "twilio-recording": Case(
        "voice",
        _twilio("recording", {"CallSid": "CA1", "RecordingStatus": "completed"}),
        "recording",
        "RecordingSid",
    ),
    "twilio-transcription": Case(
        "voice",
        _twilio("transcription", {"CallSid": "CA1", "TranscriptionSid": "TR1"}),
        "transcription",
        "TranscriptionStatus",
    ),
    "sendgrid-inbound-raw": Case(
        "email", _inbound_parse({"email": "", "charsets": "{}"}), "inbound", "RFC 5322 message"
    ),
    "sendgrid-inbound-parsed": Case(
        "email",
        # Parsed mode with no usable sender anywhere (no From address, no Sender, no envelope).
        _inbound_parse({"headers": "From: nobody\nSubject: hi\n", "text": "hi", "from": "nobody"}),
        "inbound",
        "no usable From",
    ),
    "sendgrid-events": Case("email", _event_webhook(b'{"event": "delivered"}'), "events", "JSON array"),
    "webchat-upload": Case("webchat", _webchat_upload, "upload", "client_id"),
}


@pytest.fixture
def admin_client(workspace: Workspace) -> Client:
    client = Client()
    client.force_login(factories.member(workspace, Role.ADMIN))
    return client


def _channel(
    kind: str, workspace: Workspace, fake_twilio: FakeTwilio, fake_sendgrid: FakeSendGrid
) -> Channel:
    if kind in ("sms", "voice"):
        return factories.twilio_channel(workspace, fake_twilio, kind=kind)
    if kind == "email":
        return sendgrid_channel(workspace, fake_sendgrid)
    return webchat_channel_create(workspace)


@pytest.mark.parametrize("name", list(CASES))
def test_an_unparseable_signed_request_is_answered_2xx_kept_listed_and_reprocessable(
    name: str,
    client: Client,
    admin_client: Client,
    workspace: Workspace,
    fake_twilio: FakeTwilio,
    fake_sendgrid: FakeSendGrid,
) -> None:
    case = CASES[name]
    channel = _channel(case.channel_kind, workspace, fake_twilio, fake_sendgrid)

    resp = case.post(client, channel, fake_sendgrid)

    assert 200 <= resp.status_code < 300, resp.content
    kept = InboundRequest.objects.get()
    assert (kept.channel_id, kept.workspace_id, kept.hook, kept.stage) == (
        channel.pk,
        workspace.pk,
        case.hook,
        "parse",
    )
    assert case.error in kept.last_error
    assert kept.processed_at is None
    assert bytes(kept.body)  # the bytes as sent
    assert "authorization" not in {h.lower() for h in kept.headers}  # credentials are not kept
    assert not Interaction.objects.exists()

    page = admin_client.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert f'data-unprocessed-event="{kept.pk}"' in html
    assert case.hook in html
    assert channel.provider in html

    # The data is at fault, so processing it again fails again, with the error shown again.
    again = admin_client.post(f"{PAGE}{kept.pk}/process/", follow=True)
    assert again.status_code == 200
    assert "failed again" in again.content.decode()
    kept.refresh_from_db()
    assert (kept.attempts, kept.processed_at) == (2, None)
    assert case.error in kept.last_error


def test_a_second_delivery_of_the_same_bytes_is_one_kept_request(client, sms_channel):
    form = {**SMS_FORM, "NumMedia": "two"}
    assert post_twilio(client, sms_channel, "inbound", form).status_code == 200
    assert post_twilio(client, sms_channel, "inbound", form).status_code == 200
    kept = InboundRequest.objects.get()
    assert kept.attempts == 2


def _block_interactions_with_body(body: str) -> None:
    """A transient condition: the timeline refuses this one message (as a bad migration or a full disk
    would), so applying the event fails after it was stored."""
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # ALTER TABLE refuses pending deferred FK checks
        cur.execute(
            "ALTER TABLE engagement_interaction ADD CONSTRAINT test_transient_block "
            f"CHECK (body <> '{body}') NOT VALID"
        )


def _unblock() -> None:
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cur.execute("ALTER TABLE engagement_interaction DROP CONSTRAINT test_transient_block")


def test_an_event_whose_applying_failed_is_kept_and_applies_after_the_cause_is_removed(
    client, admin_client, sms_channel
):
    _block_interactions_with_body("held back")
    form = {**SMS_FORM, "Body": "held back"}

    resp = post_twilio(client, sms_channel, "inbound", form)

    assert resp.status_code == 200  # not a 5xx: Twilio retrying the same failure cannot help
    kept = InboundRequest.objects.get()
    assert kept.stage == "apply"
    assert SMS_FORM["MessageSid"] in kept.last_error
    assert "IntegrityError" in kept.last_error
    assert ProviderEvent.objects.get().processed_at is None
    assert f'data-unprocessed-event="{kept.pk}"' in admin_client.get(PAGE).content.decode()

    _unblock()
    done = admin_client.post(f"{PAGE}{kept.pk}/process/", follow=True)

    assert "processed" in done.content.decode()
    kept.refresh_from_db()
    assert kept.processed_at is not None
    assert kept.last_error == ""
    assert bytes(kept.body) == b""  # applied: the raw copy (bodies, numbers) is not kept
    interaction = Interaction.objects.get()
    assert (interaction.body, interaction.provider_message_id) == ("held back", SMS_FORM["MessageSid"])
    assert ProviderEvent.objects.get().processed_at is not None
    assert f'data-unprocessed-event="{kept.pk}"' not in admin_client.get(PAGE).content.decode()
    # Processing it once more changes nothing.
    admin_client.post(f"{PAGE}{kept.pk}/process/")
    assert Interaction.objects.count() == 1


def test_reprocessing_an_event_applied_meanwhile_applies_nothing_twice(client, sms_channel):
    _block_interactions_with_body("held back")
    form = {**SMS_FORM, "Body": "held back"}
    post_twilio(client, sms_channel, "inbound", form)
    kept = InboundRequest.objects.get()
    _unblock()
    # The same message arrives again (another delivery of it, other bytes) and is applied on the way in.
    assert (
        post_twilio(client, sms_channel, "inbound", {**form, "ApiVersion": "2010-04-01"}).status_code == 200
    )
    assert Interaction.objects.count() == 1

    call_command("inbound_reprocess", "--id", str(kept.pk))

    kept.refresh_from_db()
    assert kept.processed_at is not None
    assert Interaction.objects.count() == 1


def test_a_partly_failing_event_batch_applies_the_rest(client, email_channel, fake_sendgrid):
    from tests.channels_inbound.test_sendgrid_events import outbound

    first = outbound(email_channel, "msg-one", "one@example.com")
    second = outbound(email_channel, "msg-two", "two@example.com")
    Interaction.objects.filter(pk=second.pk).update(body="another body")
    _block_interactions_with_body(first.body)  # the first message's row refuses every UPDATE
    body = json.dumps(
        [
            {
                "event": "delivered",
                "sg_event_id": f"ev-{n}",
                "sg_message_id": f"{mid}.x",
                "timestamp": 1700000000,
            }
            for n, mid in ((1, "msg-one"), (2, "msg-two"))
        ]
    ).encode()
    resp = client.post(
        webhook_path(email_channel, "events"),
        data=body,
        content_type="application/json",
        headers=signed_event_headers(fake_sendgrid.private_key, body),
    )
    assert resp.status_code == 200
    second.refresh_from_db()
    assert second.status == "delivered"
    kept = InboundRequest.objects.get()
    assert kept.stage == "apply"
    assert "ev-1" in kept.last_error
    assert "ev-2" not in kept.last_error

    _unblock()
    call_command("inbound_reprocess", "--all")

    first.refresh_from_db()
    assert first.status == "delivered"
    assert InboundRequest.objects.get().processed_at is not None


def test_the_command_reports_what_still_fails(client, sms_channel):
    post_twilio(client, sms_channel, "inbound", {**SMS_FORM, "NumMedia": "two"})
    with pytest.raises(CommandError, match="still fail"):
        call_command("inbound_reprocess", "--all")
    with pytest.raises(CommandError, match="--id N or --all"):
        call_command("inbound_reprocess")


def test_a_database_failure_is_a_5xx_so_the_provider_retries(sms_channel):
    """The database itself failing (here: a statement cancelled by its timeout) stores no kept request
    and answers 500, which Twilio retries; the retry applies the event."""
    with connection.cursor() as cur:
        cur.execute(
            "CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(0.5); RETURN NEW; END $$"
        )
        cur.execute(
            "CREATE TRIGGER test_slow BEFORE INSERT ON engagement_interaction "
            "FOR EACH ROW EXECUTE FUNCTION test_slow()"
        )
        cur.execute("SET LOCAL statement_timeout = '100ms'")
    client = Client(raise_request_exception=False)

    resp = post_twilio(client, sms_channel, "inbound", SMS_FORM)

    assert resp.status_code == 500
    assert not InboundRequest.objects.exists()
    with connection.cursor() as cur:
        cur.execute("SET LOCAL statement_timeout = 0")
        cur.execute("DROP TRIGGER test_slow ON engagement_interaction")
    assert post_twilio(Client(), sms_channel, "inbound", SMS_FORM).status_code == 200
    assert Interaction.objects.get().body == "hi"


def test_the_page_and_its_actions_are_for_admins_only(client, agent_client, admin_client, sms_channel):
    post_twilio(client, sms_channel, "inbound", {**SMS_FORM, "NumMedia": "two"})
    kept = InboundRequest.objects.get()
    assert agent_client.get(PAGE).status_code == 403
    assert agent_client.post(f"{PAGE}{kept.pk}/process/").status_code == 403
    assert agent_client.post(f"{PAGE}process/").status_code == 403
    assert "Unprocessed events" not in agent_client.get("/").content.decode()
    assert f'href="{PAGE}"' in admin_client.get("/").content.decode()
    # Another workspace's admin sees nothing of it and cannot process it.
    other = Client()
    other.force_login(factories.member(factories.workspace_create(), Role.ADMIN))
    assert f'data-unprocessed-event="{kept.pk}"' not in other.get(PAGE).content.decode()
    assert other.post(f"{PAGE}{kept.pk}/process/").status_code == 404


def test_process_all_from_the_page(client, admin_client, sms_channel):
    _block_interactions_with_body("held back")
    post_twilio(client, sms_channel, "inbound", {**SMS_FORM, "Body": "held back"})
    post_twilio(client, sms_channel, "inbound", {**SMS_FORM, "MessageSid": "SM" + "f" * 32, "NumMedia": "x"})
    _unblock()
    resp = admin_client.post(f"{PAGE}process/", follow=True)
    assert "1 processed, 1 failed again" in resp.content.decode()
    assert list(InboundRequest.objects.filter(processed_at__isnull=True).values_list("stage", flat=True)) == [
        "parse"
    ]


def test_the_happy_path_keeps_nothing(client, sms_channel):
    assert post_twilio(client, sms_channel, "inbound", SMS_FORM).status_code == 200
    assert not InboundRequest.objects.exists()


def test_a_message_to_a_switched_off_channel_is_kept_until_it_is_back(client, admin_client, sms_channel):
    Channel.objects.filter(pk=sms_channel.pk).update(is_active=False)

    resp = post_twilio(client, sms_channel, "inbound", SMS_FORM)

    assert resp.status_code == 200
    kept = InboundRequest.objects.get()
    assert kept.stage == "channel"
    assert "is not active" in kept.last_error
    assert not Interaction.objects.exists()
    assert "Channel inactive" in admin_client.get(PAGE).content.decode()
    # Still off: processing it again waits; back on: it applies.
    admin_client.post(f"{PAGE}{kept.pk}/process/")
    assert not Interaction.objects.exists()
    Channel.objects.filter(pk=sms_channel.pk).update(is_active=True)
    admin_client.post(f"{PAGE}{kept.pk}/process/")
    assert Interaction.objects.get().body == "hi"


def test_a_switched_off_channel_still_checks_the_signature(client, sms_channel):
    Channel.objects.filter(pk=sms_channel.pk).update(is_active=False)
    resp = post_twilio(client, sms_channel, "inbound", SMS_FORM, signature="bm90LXRoZS1zaWduYXR1cmU=")
    assert resp.status_code == 403
    assert not InboundRequest.objects.exists()


def test_an_admin_may_discard_a_kept_request(client, admin_client, agent_client, sms_channel):
    post_twilio(client, sms_channel, "inbound", {**SMS_FORM, "NumMedia": "two"})
    kept = InboundRequest.objects.get()
    assert agent_client.post(f"{PAGE}{kept.pk}/discard/").status_code == 403
    done = admin_client.post(f"{PAGE}{kept.pk}/discard/", follow=True)
    assert "discarded" in done.content.decode()
    assert not InboundRequest.objects.exists()
    assert admin_client.post(f"{PAGE}{kept.pk}/discard/").status_code == 404
