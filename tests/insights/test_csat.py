"""CSAT: a survey after each resolution on the conversation's channel, once; the answer by SMS digit,
webchat reply or the signed page; consent respected; shown on the timeline."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from customers.consent import consent_record
from engagement.models import (
    Channel,
    Conversation,
    ConversationResolution,
    CsatResponse,
    Interaction,
    OutboxEvent,
    Workspace,
)
from engagement.services.conversation_actions import conversation_status_set
from engagement.services.csat import (
    csat_reply_record,
    csat_reply_score,
    csat_settings_set,
    csat_survey_send,
)
from tests import factories
from tests.fakes.twilio_server import FakeTwilio

from .conftest import conversation_pk, inbound


def _resolve(workspace: Workspace, conversation_id: int, status: str = "resolved") -> Conversation:
    conversation = Conversation.objects.get(pk=conversation_id)
    conversation_status_set(workspace=workspace, conversation=conversation, status=status)
    return conversation


def test_reply_digits() -> None:
    assert [csat_reply_score(t) for t in ["5", " 4! ", "3 stars", "2/5", "1."]] == [5, 4, 3, 2, 1]
    assert [csat_reply_score(t) for t in ["6", "0", "5 please call me", "thanks", "", "45"]] == [None] * 6


@pytest.mark.django_db
def test_no_survey_unless_switched_on(
    workspace: Workspace, sms_channel: Channel, fake_twilio: FakeTwilio
) -> None:
    message = inbound(sms_channel, "+14155550101", "help")
    _resolve(workspace, conversation_pk(message))
    resolution = ConversationResolution.objects.get()
    assert resolution.csat_interaction_id is None
    assert fake_twilio.messages == []


@pytest.mark.django_db
def test_sms_survey_once_per_resolution_and_the_digit_is_the_answer(
    workspace: Workspace,
    sms_channel: Channel,
    fake_twilio: FakeTwilio,
    django_capture_on_commit_callbacks: Any,
) -> None:
    csat_settings_set(workspace=workspace, enabled=True, question="How did we do?")
    message = inbound(sms_channel, "+14155550101", "my order is late", name="Grace")
    cid = conversation_pk(message)
    with django_capture_on_commit_callbacks(execute=True):
        _resolve(workspace, cid)
    resolution = ConversationResolution.objects.get()
    survey = Interaction.objects.get(pk=resolution.csat_interaction_id or 0)
    assert survey.body == "How did we do? Reply 1-5 (5 = very satisfied)."
    assert survey.idempotency_key == f"csat:{resolution.pk}"
    assert survey.conversation_id == cid
    assert [m["Body"] for m in fake_twilio.messages] == [survey.body]
    # Never twice for one resolution.
    assert csat_survey_send(workspace=workspace, resolution=resolution) is None
    resolution.refresh_from_db()
    resolution.csat_interaction = None
    csat_survey_send(workspace=workspace, resolution=resolution)
    assert Interaction.objects.filter(idempotency_key=f"csat:{resolution.pk}").count() == 1

    # The customer answers "4": recorded through the message.received listener (outbox → task).
    with django_capture_on_commit_callbacks(execute=True):
        reply = inbound(sms_channel, "+14155550101", "4")
    csat = CsatResponse.objects.get()
    assert (csat.score, csat.source, csat.resolution_id, csat.interaction_id) == (
        4,
        "sms",
        resolution.pk,
        reply.pk,
    )
    # The digit opened a new conversation: closed again, nothing for an agent to do.
    assert Conversation.objects.get(pk=reply.conversation_id or 0).status == "resolved"
    survey.refresh_from_db()
    assert survey.metadata["csat"]["score"] == 4
    assert OutboxEvent.objects.filter(name="csat.received").count() == 1
    # A later digit answers nothing (the survey has its answer).
    assert csat_reply_record(interaction_id=inbound(sms_channel, "+14155550101", "1").pk) is None
    assert CsatResponse.objects.get().score == 4


@pytest.mark.django_db
def test_reopen_and_resolve_again_is_a_new_survey(
    workspace: Workspace, sms_channel: Channel, fake_twilio: FakeTwilio
) -> None:
    csat_settings_set(workspace=workspace, enabled=True)
    cid = conversation_pk(inbound(sms_channel, "+14155550101", "help"))
    _resolve(workspace, cid)
    _resolve(workspace, cid, "open")
    _resolve(workspace, cid)
    resolutions = list(ConversationResolution.objects.order_by("pk"))
    assert len(resolutions) == 2
    assert resolutions[1].opened_at == resolutions[0].resolved_at
    assert len({r.csat_interaction_id for r in resolutions}) == 2


@pytest.mark.django_db
def test_opted_out_customer_gets_no_survey(
    workspace: Workspace, sms_channel: Channel, fake_twilio: FakeTwilio
) -> None:
    csat_settings_set(workspace=workspace, enabled=True)
    message = inbound(sms_channel, "+14155550101", "help")
    consent_record(customer=message.customer, channel="sms", status="opted_out", source="agent")
    _resolve(workspace, conversation_pk(message))
    resolution = ConversationResolution.objects.get()
    assert resolution.csat_skipped == "consent"
    assert resolution.csat_sent_at is None
    assert Interaction.objects.get(pk=resolution.csat_interaction_id or 0).status == "blocked"
    assert fake_twilio.messages == []


@pytest.mark.django_db
def test_email_survey_links_to_the_signed_page(workspace: Workspace) -> None:
    csat_settings_set(workspace=workspace, enabled=True)
    channel = factories.channel_create(workspace, "email")
    customer = factories.customer_create(workspace, ("email", "grace@example.com"), name="Grace")
    conversation = Conversation.objects.create(
        workspace=workspace, customer=customer, channel=channel, last_activity_at=timezone.now()
    )
    _resolve(workspace, conversation.pk)
    resolution = ConversationResolution.objects.get()
    survey = Interaction.objects.get(pk=resolution.csat_interaction_id or 0)
    assert survey.metadata["email"]["subject"] == "How did we do?"
    link = re.search(r"http\S+/csat/(\S+)/\?score=5", survey.body)
    assert link is not None
    path = f"/csat/{link.group(1)}/"

    client = Client()
    page = client.get(path, {"score": "5"})
    assert page.status_code == 200
    assert CsatResponse.objects.count() == 0  # a GET (a mail scanner) records nothing
    assert 'value="5" checked' in page.content.decode()
    done = client.post(path, {"score": "5", "comment": "quick and kind"})
    assert done.status_code == 200
    assert "Thank you" in done.content.decode()
    csat = CsatResponse.objects.get()
    assert (csat.score, csat.source, csat.comment) == (5, "page", "quick and kind")
    assert client.post(path, {"score": "9"}).status_code == 400
    assert client.get("/csat/forged-token/").status_code == 404


@pytest.mark.django_db
def test_webchat_survey_and_reply(workspace: Workspace) -> None:
    csat_settings_set(workspace=workspace, enabled=True)
    channel = factories.channel_create(workspace, "webchat")
    customer = factories.customer_create(workspace, ("webchat", "v-abc"), name="Visitor")
    conversation = Conversation.objects.create(
        workspace=workspace, customer=customer, channel=channel, last_activity_at=timezone.now()
    )
    _resolve(workspace, conversation.pk)
    resolution = ConversationResolution.objects.get()
    survey = Interaction.objects.get(pk=resolution.csat_interaction_id or 0)
    assert "Reply with a number from 1 (poor) to 5 (great)" in survey.body
    reply = Interaction.objects.create(
        workspace=workspace,
        customer=customer,
        channel=channel,
        direction="inbound",
        body="5",
        status="received",
        status_changed_at=timezone.now(),
        created_at=timezone.now(),
    )
    csat = csat_reply_record(interaction_id=reply.pk)
    assert csat is not None
    assert (csat.score, csat.source) == (5, "webchat")


@pytest.mark.django_db
def test_timeline_shows_the_score(
    agent_client: Client, workspace: Workspace, sms_channel: Channel, fake_twilio: FakeTwilio
) -> None:
    csat_settings_set(workspace=workspace, enabled=True)
    message = inbound(sms_channel, "+14155550101", "help", name="Grace")
    _resolve(workspace, conversation_pk(message))
    reply = inbound(sms_channel, "+14155550101", "5")
    csat_reply_record(interaction_id=reply.pk)
    html = agent_client.get(f"/customers/{message.customer_id}/thread/").content.decode()
    assert 'data-csat-score="5"' in html
    assert "CSAT 5/5" in html


@pytest.mark.django_db
def test_csat_settings_on_the_admin_page(admin_client: Client, workspace: Workspace) -> None:
    resp = admin_client.post(
        "/settings/sla/", {"form": "csat", "enabled": "1", "question": "Happy?", "reply_window_hours": "24"}
    )
    assert resp.status_code == 302
    assert (
        workspace.csat_settings.enabled,
        workspace.csat_settings.question,
        workspace.csat_settings.reply_window_hours,
    ) == (True, "Happy?", 24)
