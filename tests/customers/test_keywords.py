"""SMS keywords (PROTOCOLS.md E): the bare words, the consent change, exactly one reply. The other
forms of each keyword (punctuation, several words, other languages) are in test_optout_keyword_kinds.py."""

from __future__ import annotations

import pytest

from customers.consent import consent_state
from customers.keywords import keyword_classify
from customers.models import ConsentEvent
from engagement.models import AutomationRule, Interaction
from engagement.services.automation import automations_run
from engagement.services.messaging import message_send
from tests import factories
from tests.conftest import post_twilio
from tests.customers.conftest import inbound

pytestmark = pytest.mark.django_db

OPT_OUT = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]
OPT_IN = ["START", "UNSTOP", "YES"]
HELP = ["HELP", "INFO"]


def _outbound(customer):
    return list(Interaction.objects.filter(customer=customer, direction="outbound").order_by("pk"))


@pytest.mark.parametrize("word", OPT_OUT)
@pytest.mark.parametrize("variant", [str.upper, str.lower, lambda w: f"  {w.title()} \n"])
def test_each_opt_out_keyword_opts_out_of_sms_with_one_confirmation(workspace, sms, word, variant):
    message = inbound(sms, "+14155550100", variant(word))
    customer = message.customer
    assert consent_state(customer=customer, channel="sms", purpose="transactional") == "opted_out"
    assert consent_state(customer=customer, channel="sms", purpose="marketing") == "opted_out"
    event = ConsentEvent.objects.get(customer=customer)
    assert (event.source, event.purpose, event.address) == ("sms_keyword", "", "+14155550100")
    assert event.evidence["interaction_id"] == message.pk
    [reply] = _outbound(customer)
    assert reply.status == "queued"  # the confirmation goes out despite the opt-out
    assert "unsubscribed" in reply.body
    assert reply.metadata["purpose"] == "compliance"
    assert reply.idempotency_key == f"keyword:{message.pk}"
    # The keyword message itself stays on the timeline.
    assert Interaction.objects.filter(customer=customer, direction="inbound").get().body == variant(word)


@pytest.mark.parametrize("word", OPT_IN)
def test_each_opt_in_keyword_opts_back_in(workspace, sms, word):
    stop = inbound(sms, "+14155550100", "STOP")
    back = inbound(sms, "+14155550100", word.lower())
    assert back.customer_id == stop.customer_id
    assert consent_state(customer=back.customer, channel="sms", purpose="transactional") == "opted_in"
    # START lifts the block but is no marketing opt-in.
    assert consent_state(customer=back.customer, channel="sms", purpose="marketing") is None
    replies = _outbound(back.customer)
    assert len(replies) == 2
    assert "subscribed again" in replies[1].body
    after, _ = message_send(workspace=workspace, channel=sms, customer=back.customer, body="Order shipped")
    assert after.status == "queued"


@pytest.mark.parametrize("word", HELP)
def test_help_keywords_get_the_workspace_help_text(workspace, sms, word):
    workspace.help_text = "Acme support: call 555-0100. Reply STOP to opt out."
    workspace.save()
    message = inbound(sms, "+14155550100", word.capitalize())
    [reply] = _outbound(message.customer)
    assert reply.body == workspace.help_text
    assert not ConsentEvent.objects.filter(customer=message.customer).exists()


def test_help_is_answered_even_when_opted_out(workspace, sms):
    inbound(sms, "+14155550100", "STOP")
    message = inbound(sms, "+14155550100", "HELP")
    replies = _outbound(message.customer)
    assert [r.status for r in replies] == ["queued", "queued"]
    assert replies[1].body.startswith(workspace.name)


@pytest.mark.parametrize(
    "body", ["please stop calling me at work", "I can't stop laughing", "yes please", "Help is on the way",
             "The end of the week works", "cancel my appointment"],
)  # fmt: skip
def test_a_sentence_is_no_keyword(workspace, sms, body):
    message = inbound(sms, "+14155550100", body)
    assert keyword_classify(body) is None
    assert not ConsentEvent.objects.filter(customer=message.customer).exists()
    assert _outbound(message.customer) == []


def test_keywords_only_apply_to_sms(workspace, email_channel, webchat):
    mail = inbound(email_channel, "ann@example.com", "STOP")
    chat = inbound(webchat, "visitor-1", "stop")
    assert not ConsentEvent.objects.filter(customer__in=[mail.customer, chat.customer]).exists()


def test_after_stop_an_automation_reply_is_blocked_and_only_the_confirmation_goes(workspace, sms):
    rule = AutomationRule.objects.create(workspace=workspace, name="all", match_type="any", template="Hi!")
    message = inbound(sms, "+14155550100", "STOP")
    automations_run(event_name="message.received", workspace_id=workspace.pk, interaction_id=message.pk)
    replies = _outbound(message.customer)
    assert [(r.status, r.automation_rule_id) for r in replies] == [("queued", None), ("blocked", rule.pk)]


def test_provider_that_answers_keywords_itself_gets_no_second_confirmation(workspace):
    channel = factories.channel_create(workspace, "sms", config={"provider_handles_keywords": True})
    message = inbound(channel, "+14155550100", "STOP")
    assert consent_state(customer=message.customer, channel="sms", purpose="transactional") == "opted_out"
    assert _outbound(message.customer) == []


def test_stop_through_the_twilio_webhook_confirms_exactly_once_across_retries(client, sms_channel):
    params = {
        "MessageSid": "SM" + "a" * 32,
        "AccountSid": sms_channel.config["account_sid"],
        "From": "+14155550100",
        "To": sms_channel.address,
        "Body": "Stop",
        "NumMedia": "0",
    }
    for _ in range(3):  # Twilio retries the webhook
        assert post_twilio(client, sms_channel, "inbound", params).status_code == 200
    message = Interaction.objects.get(direction="inbound")
    assert ConsentEvent.objects.filter(customer=message.customer).count() == 1
    assert len(_outbound(message.customer)) == 1
