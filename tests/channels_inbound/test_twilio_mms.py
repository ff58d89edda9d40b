"""SMS in full, inbound: MMS media downloaded after commit into storage (Basic auth, only to Twilio's
origin), segment counts, every message status of PROTOCOLS.md C, error reasons, and 21610 → consent."""

from __future__ import annotations

import pytest
from django.utils import timezone

from channels_inbound.models import ProviderEvent
from channels_inbound.providers.twilio import STATUS_MAP
from customers.models import ConsentEvent
from customers.services import Identifier, customer_resolve
from engagement.models import Attachment, Channel, Interaction
from engagement.services.media import attachment_fetch
from tests import factories
from tests.conftest import load_payload, post_twilio
from tests.fakes.twilio_server import FAKE_JPEG, FAKE_MP4

# Every MessageStatus value of PROTOCOLS.md C (TP MessageInstance.Status).
TWILIO_MESSAGE_STATUSES = [
    "queued",
    "sending",
    "sent",
    "failed",
    "delivered",
    "undelivered",
    "receiving",
    "received",
    "accepted",
    "scheduled",
    "read",
    "partially_delivered",
    "canceled",
]


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def _mms(fake):
    form = load_payload("twilio_inbound_mms.json")
    for n in range(int(form["NumMedia"])):
        form[f"MediaUrl{n}"] = fake.media_url(form["MessageSid"], n)
    return form


@pytest.mark.django_db
def test_mms_media_is_downloaded_after_commit_into_attachments(
    client, sms_channel, fake_twilio, media_root, django_capture_on_commit_callbacks
):
    form = _mms(fake_twilio)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert post_twilio(client, sms_channel, "inbound", form).status_code == 200
    # The webhook answered without fetching anything: the downloads wait for the commit.
    assert fake_twilio.media_requests == []
    attachments = list(Attachment.objects.order_by("id"))
    assert [a.source_url for a in attachments] == [form["MediaUrl0"], form["MediaUrl1"]]
    assert not any(a.file for a in attachments)
    for callback in callbacks:
        callback()
    interaction = Interaction.objects.get()
    assert interaction.body == "See photos"
    photo, video = Attachment.objects.filter(interaction=interaction).order_by("id")
    assert (photo.content_type, photo.size, photo.file.read()) == ("image/jpeg", len(FAKE_JPEG), FAKE_JPEG)
    assert (video.content_type, video.file.read()) == ("video/mp4", FAKE_MP4)
    assert photo.filename.endswith(".jpg")
    assert photo.workspace_id == sms_channel.workspace_id
    # Fetched with the channel's AccountSid/AuthToken, once each.
    assert len(fake_twilio.media_requests) == 2
    assert all(authorized for _, authorized in fake_twilio.media_requests)
    # A second run of the task fetches nothing more.
    assert attachment_fetch(attachment_id=photo.pk) is True
    assert len(fake_twilio.media_requests) == 2


@pytest.mark.django_db
def test_replayed_mms_attaches_media_once(client, sms_channel, fake_twilio, media_root):
    form = _mms(fake_twilio)
    for _ in range(5):
        assert post_twilio(client, sms_channel, "inbound", form).status_code == 200
    assert Attachment.objects.count() == 2
    assert Interaction.objects.count() == 1


@pytest.mark.django_db
def test_credentials_are_never_sent_to_another_host(client, workspace, fake_twilio, media_root):
    # The channel's API origin is elsewhere: the fake (a "foreign" host now) gets no Authorization.
    channel = factories.twilio_channel(workspace, fake_twilio, api_base_url="https://api.twilio.com")
    form = _mms(fake_twilio)
    post_twilio(client, channel, "inbound", form)
    photo = Attachment.objects.order_by("id").first()
    assert photo is not None
    assert attachment_fetch(attachment_id=photo.pk) is False  # 401: left as a link
    assert fake_twilio.media_requests[-1][1] is False
    photo.refresh_from_db()
    assert not photo.file


@pytest.mark.django_db
def test_credentials_are_never_sent_for_another_providers_channel(
    client, sms_channel, fake_twilio, media_root
):
    # Media of a channel that is not a Twilio one gets no Twilio credentials, even on Twilio's host.
    post_twilio(client, sms_channel, "inbound", _mms(fake_twilio))
    Channel.objects.filter(pk=sms_channel.pk).update(provider="sandbox")
    photo = Attachment.objects.order_by("id").first()
    assert photo is not None
    assert attachment_fetch(attachment_id=photo.pk) is False  # 401: left as a link
    assert fake_twilio.media_requests[-1][1] is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "num_segments", "expected"),
    [("Task from conference nast", "1", 1), ("x" * 200, "2", 2), ("Привет " * 20, None, 3), ("hi", "", 1)],
)
def test_inbound_segments_are_stored(client, sms_channel, body, num_segments, expected):
    form = {**load_payload("twilio_inbound_sms.txt"), "Body": body}
    if num_segments is None:
        form.pop("NumSegments")
    else:
        form["NumSegments"] = num_segments
    post_twilio(client, sms_channel, "inbound", form)
    assert Interaction.objects.get().segments == expected


def _outbound(channel, sid="SM" + "9" * 32, status="sent"):
    customer, _ = customer_resolve(
        workspace=channel.workspace, identifier=Identifier("phone", "+14155550100")
    )
    now = timezone.now()
    return Interaction.objects.create(
        workspace=channel.workspace,
        customer=customer,
        channel=channel,
        direction="outbound",
        body="hi",
        customer_address="+14155550100",
        status=status,
        status_changed_at=now,
        provider_message_id=sid,
        created_at=now,
    )


def test_every_documented_message_status_is_mapped():
    assert set(STATUS_MAP) == set(TWILIO_MESSAGE_STATUSES)


@pytest.mark.django_db
@pytest.mark.parametrize("twilio_status", TWILIO_MESSAGE_STATUSES)
def test_every_status_callback_is_accepted_and_mapped(client, sms_channel, twilio_status):
    interaction = _outbound(sms_channel, status="sending")
    form = {
        "MessageSid": interaction.provider_message_id,
        "MessageStatus": twilio_status,
        "AccountSid": "AC1",
    }
    assert post_twilio(client, sms_channel, "status", form).status_code == 200
    interaction.refresh_from_db()
    expected = STATUS_MAP[twilio_status]
    if expected in (None, "queued"):
        assert interaction.status == "sending"  # inbound states and initial states never move it back
    else:
        assert interaction.status == expected


@pytest.mark.django_db
def test_unknown_status_is_logged_and_answered_200(client, sms_channel):
    interaction = _outbound(sms_channel)
    form = {"MessageSid": interaction.provider_message_id, "MessageStatus": "teleported", "AccountSid": "AC1"}
    assert post_twilio(client, sms_channel, "status", form).status_code == 200
    assert ProviderEvent.objects.count() == 0


@pytest.mark.django_db
def test_error_code_without_message_gets_a_reason(client, sms_channel):
    interaction = _outbound(sms_channel)
    form = {
        "MessageSid": interaction.provider_message_id,
        "MessageStatus": "undelivered",
        "ErrorCode": "30007",
    }
    post_twilio(client, sms_channel, "status", form)
    interaction.refresh_from_db()
    assert (interaction.error_code, interaction.error_message) == ("30007", "carrier filtered the message")


@pytest.mark.django_db
def test_21610_in_a_status_callback_records_the_opt_out(client, sms_channel):
    interaction = _outbound(sms_channel)
    form = {
        "MessageSid": interaction.provider_message_id,
        "MessageStatus": "failed",
        "ErrorCode": "21610",
        "AccountSid": "AC1",
    }
    for _ in range(3):
        post_twilio(client, sms_channel, "status", form)
    interaction.refresh_from_db()
    assert (interaction.status, interaction.error_code) == ("failed", "21610")
    consent = ConsentEvent.objects.get(customer=interaction.customer)
    assert (consent.channel, consent.status, consent.source) == ("sms", "opted_out", "provider_error")
    assert consent.evidence["ErrorCode"] == "21610"
