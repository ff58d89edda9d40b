"""Issue 9, kind 4: senders that are not E.164 numbers are customers too.

Carriers deliver SMS from short codes, alphanumeric sender IDs and national numbers without a country
code; Twilio Voice reports callers as SIP URIs, Voice SDK clients or withheld numbers. Each is recorded
on a customer of its own identity kind (never taken for, or merged with, a phone number), and replying
to one that cannot receive is refused before anything is sent, with the reason.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from customers.identifiers import caller_identifier, sms_sender_identifier
from customers.models import Customer, Identity
from customers.services import Identifier, customer_resolve
from engagement.models import Channel, Interaction
from engagement.services.messaging import RecipientUnreachable, message_send
from engagement.services.tenancy import api_key_create
from tests import factories
from tests.conftest import load_payload, post_twilio
from tests.fakes.twilio_server import FakeTwilio

pytestmark = pytest.mark.django_db


def sms_from(
    client: Client, channel: Channel, sender: str, body: str = "Your code is 123456", **extra: str
) -> Any:
    form = {
        **load_payload("twilio_inbound_sms.txt"),
        "MessageSid": "SM" + format(abs(hash((sender, body))), "032x")[:32],
        "From": sender,
        "To": channel.address,
        "Body": body,
        **extra,
    }
    return post_twilio(client, channel, "inbound", form)


def identities_of(interaction: Interaction) -> list[tuple[str, str]]:
    return list(Identity.objects.filter(customer=interaction.customer).values_list("kind", "value"))


# ---------------------------------------------------------------- SMS senders


def test_an_sms_from_a_short_code_is_on_that_short_codes_timeline(client, sms_channel):
    resp = sms_from(client, sms_channel, "68849", FromCountry="US")

    assert resp.status_code == 200
    interaction = Interaction.objects.get()
    assert interaction.body == "Your code is 123456"
    assert interaction.customer_address == "68849"
    assert identities_of(interaction) == [("short_code", "68849")]
    assert interaction.customer.display_name == "68849"


def test_an_sms_from_an_alphanumeric_sender_id_is_on_its_timeline(client, sms_channel):
    assert sms_from(client, sms_channel, "AMAZON", body="Your parcel is on its way").status_code == 200
    assert sms_from(client, sms_channel, "AMAZON", body="Delivered").status_code == 200

    first, second = Interaction.objects.order_by("id")
    assert identities_of(first) == [("sender_id", "AMAZON")]
    assert first.customer_id == second.customer_id
    assert first.conversation_id == second.conversation_id
    assert first.customer.display_name == "AMAZON"


def test_a_short_code_is_never_taken_for_a_phone_number_that_starts_with_its_digits(client, sms_channel):
    phone_owner, _ = customer_resolve(
        workspace=sms_channel.workspace, identifier=Identifier("phone", "+68849123")
    )
    sms_from(client, sms_channel, "68849")
    sms_from(client, sms_channel, "+68849123", body="from the phone")

    short, phone = Interaction.objects.order_by("id")
    assert short.customer_id != phone_owner.pk
    assert phone.customer_id == phone_owner.pk
    assert identities_of(short) == [("short_code", "68849")]
    assert Customer.objects.filter(merged_into__isnull=False).count() == 0


@pytest.mark.parametrize(
    ("sender", "extra", "expected"),
    [
        ("(415) 555-0100", {"FromCountry": "US"}, "+14155550100"),  # national, country from Twilio
        ("4155550100", {"FromCountry": ""}, "+14155550100"),  # national, country of the number called
        ("+14155550100", {}, "+14155550100"),
    ],
)
def test_a_national_number_is_the_same_customer_as_its_e164_form(
    client, sms_channel, sender, extra, expected
):
    known, _ = customer_resolve(
        workspace=sms_channel.workspace, identifier=Identifier("phone", "+14155550100")
    )
    assert sms_from(client, sms_channel, sender, **extra).status_code == 200
    interaction = Interaction.objects.get()
    assert interaction.customer_id == known.pk
    assert interaction.customer_address == expected


def test_a_national_number_takes_the_region_of_our_uk_number(client, workspace, fake_twilio: FakeTwilio):
    channel = factories.twilio_channel(workspace, fake_twilio)
    Channel.objects.filter(pk=channel.pk).update(address="+447400123999")
    channel.refresh_from_db()
    assert sms_from(client, channel, "07400 123456", FromCountry="").status_code == 200
    assert identities_of(Interaction.objects.get()) == [("phone", "+447400123456")]


@pytest.mark.parametrize(
    ("raw", "region", "kind", "value"),
    [
        ("68849", "US", "short_code", "68849"),
        ("889-00", "US", "short_code", "88900"),
        ("AMAZON", "US", "sender_id", "AMAZON"),
        ("Vodafone", "GB", "sender_id", "Vodafone"),
        ("Bank-42", "GB", "sender_id", "Bank-42"),
        ("+68849", None, "sender_id", "+68849"),  # not a possible number: kept, as a sender ID
        ("020 7946 0018", "GB", "phone", "+442079460018"),
        ("4155550100", "US", "phone", "+14155550100"),
        ("+1 (415) 555-0100", None, "phone", "+14155550100"),
    ],
)
def test_sender_classification(raw, region, kind, value):
    assert sms_sender_identifier(raw, region=region) == Identifier(kind, value)


# ---------------------------------------------------------------- voice callers


@pytest.fixture
def voice_channel(workspace, fake_twilio: FakeTwilio) -> Channel:
    return factories.twilio_channel(workspace, fake_twilio, kind="voice")


def call_from(client: Client, channel: Channel, sender: str, call_sid: str) -> Any:
    form = {
        "CallSid": call_sid,
        "From": sender,
        "Caller": sender,
        "To": channel.address,
        "CallStatus": "ringing",
    }
    return post_twilio(client, channel, "voice", form)


@pytest.mark.parametrize(
    "withheld", ["anonymous", "+266696687", "+7378742833", "+86282452253", "+2562533", "Restricted"]
)
def test_each_call_from_a_withheld_number_is_on_its_own_unknown_caller(client, voice_channel, withheld):
    assert call_from(client, voice_channel, withheld, "CA" + "1" * 32).status_code == 200
    assert call_from(client, voice_channel, withheld, "CA" + "2" * 32).status_code == 200

    first, second = Interaction.objects.order_by("id")
    assert first.kind == "call"
    assert first.customer_id != second.customer_id  # two withheld callers are not one person
    assert identities_of(first) == [("unknown_caller", "CA" + "1" * 32)]
    assert first.customer.display_name == "Unknown caller"
    page = Client()
    page.force_login(factories.member(voice_channel.workspace))
    html = page.get(f"/conversations/{first.conversation_id}/").content.decode()
    assert "a withheld number" in html


@pytest.mark.parametrize(
    ("sender", "kind", "value"),
    [
        ("client:alice", "voice_client", "alice"),
        ("sip:Alice@Example.COM;transport=udp", "sip", "sip:Alice@example.com"),
    ],
)
def test_sip_and_voice_sdk_callers_are_customers_of_their_own_kind(
    client, voice_channel, sender, kind, value
):
    call_from(client, voice_channel, sender, "CA" + "3" * 32)
    call_from(client, voice_channel, sender, "CA" + "4" * 32)
    first, second = Interaction.objects.order_by("id")
    assert identities_of(first) == [(kind, value)]
    assert first.customer_id == second.customer_id


def test_caller_classification():
    assert caller_identifier("anonymous", region="US", call_id="CA1") == Identifier("unknown_caller", "CA1")
    assert caller_identifier("+14155550100", region="US", call_id="CA1") == Identifier(
        "phone", "+14155550100"
    )
    assert caller_identifier("68849", region="US", call_id="CA1") == Identifier("short_code", "68849")


# ---------------------------------------------------------------- replies are refused, with the reason


def _sender_customer(client: Client, channel: Channel, sender: str) -> Interaction:
    sms_from(client, channel, sender)
    return Interaction.objects.get(direction="inbound", customer_address=sender)


@pytest.mark.parametrize(
    ("sender", "reason"),
    [("AMAZON", "alphanumeric sender ID"), ("68849", "is a short code")],
)
def test_replying_to_a_sender_that_cannot_receive_is_refused_with_the_reason(
    client, agent_client, sms_channel, fake_twilio, sender, reason, django_capture_on_commit_callbacks
):
    inbound = _sender_customer(client, sms_channel, sender)

    with pytest.raises(RecipientUnreachable, match=reason) as refused:
        message_send(
            workspace=sms_channel.workspace, channel=sms_channel, customer=inbound.customer, body="Thanks!"
        )
    assert refused.value.code == "recipient_unreachable"

    # The console says so before the agent writes, shows why on sending, and nothing is recorded or sent.
    before = agent_client.get(f"/conversations/{inbound.conversation_id}/").content.decode()
    assert "data-reply-refusal" in before
    assert reason in before
    with django_capture_on_commit_callbacks(execute=True):
        page = agent_client.post(f"/conversations/{inbound.conversation_id}/", {"body": "Thanks!"})
    assert page.status_code == 200
    assert reason in page.content.decode()
    assert not Interaction.objects.filter(direction="outbound").exists()
    assert fake_twilio.messages == []


def test_the_api_refuses_a_reply_to_a_sender_id_with_a_code(client, sms_channel, workspace, fake_twilio):
    _sender_customer(client, sms_channel, "AMAZON")
    _, secret = api_key_create(workspace=workspace, name="tests")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    resp = api.post(
        "/api/v1/messages/", {"channel_id": sms_channel.pk, "to": "AMAZON", "body": "hi"}, format="json"
    )

    assert resp.status_code == 400, resp.json()
    assert resp.json().get("code") == "recipient_unreachable", resp.json()
    assert "alphanumeric sender ID" in resp.json()["detail"]
    assert not Interaction.objects.filter(direction="outbound").exists()
    # A typo is not mistaken for a sender ID nobody wrote from.
    typo = api.post(
        "/api/v1/messages/", {"channel_id": sms_channel.pk, "to": "not a phone", "body": "x"}, format="json"
    )
    assert "not a phone number" in typo.json()["detail"]


def test_a_short_code_channel_may_reply_to_a_short_code(
    client, workspace, fake_twilio, django_capture_on_commit_callbacks
):
    channel = factories.twilio_channel(workspace, fake_twilio)
    Channel.objects.filter(pk=channel.pk).update(address="12345")
    channel.refresh_from_db()
    inbound = _sender_customer(client, channel, "68849")
    with django_capture_on_commit_callbacks(execute=True):
        reply, _ = message_send(workspace=workspace, channel=channel, customer=inbound.customer, body="OK")
    assert reply.customer_address == "68849"
    assert reply.status != "blocked"


def test_calling_back_a_withheld_caller_is_refused(client, voice_channel):
    call_from(client, voice_channel, "anonymous", "CA" + "5" * 32)
    call = Interaction.objects.get()
    with pytest.raises(RecipientUnreachable, match="withheld"):
        message_send(
            workspace=voice_channel.workspace, channel=voice_channel, customer=call.customer, body="Hi"
        )


def test_an_automatic_answer_to_a_sender_id_is_skipped_not_crashed(
    client, sms_channel, fake_twilio, django_capture_on_commit_callbacks
):
    from engagement.models import AutomationRule

    AutomationRule.objects.create(
        workspace=sms_channel.workspace, name="ack", match_type="any", template="Thanks, we got it."
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert sms_from(client, sms_channel, "AMAZON").status_code == 200
    assert Interaction.objects.filter(direction="inbound").count() == 1
    assert not Interaction.objects.filter(direction="outbound").exists()
    assert fake_twilio.messages == []


def test_a_phone_senders_conversation_has_no_reply_warning(client, agent_client, sms_channel):
    inbound = _sender_customer(client, sms_channel, "+14155550100")
    page = agent_client.get(f"/conversations/{inbound.conversation_id}/").content.decode()
    assert "data-reply-refusal" not in page
