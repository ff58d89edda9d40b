"""Issue 9, kind 5: opt-out is honoured however the customer says it (FCC 24-24 "any reasonable means").

Every form of STOP, START and HELP (case, whitespace, Unicode, punctuation and emoji around it, several
words, courtesy words, Spanish/French/German/Portuguese) does what the bare word does, with exactly one
confirmation; a repeated STOP confirms once; "stop" inside a sentence changes no consent but is shown
to an agent as a possible revocation. The keyword module decides and the inbound service sends.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.test import Client

from customers.consent import consent_record, consent_state
from customers.keywords import Keyword, keyword_match, keyword_normalize, sms_keyword_decide
from customers.models import ConsentEvent
from engagement.models import Interaction
from tests.conftest import post_twilio
from tests.customers.conftest import inbound

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

OPT_OUT_FORMS = [
    # punctuation, case, whitespace
    "Stop.", "STOP!", "stop?!", "  Stop , ", "'STOP'", "\"stop\"", "Stop\u2026", "STOP\n\n",
    # several words, courtesy words, repeats
    "Opt out", "opt-out", "OPT-OUT.", "Opt me out", "Stop please", "Please stop", "STOP PLEASE!",
    "stop pls", "Stop, thank you", "stop all", "STOP STOP", "Unsubscribe me", "unsubscribe me please",
    "remove me", "un-subscribe",
    # the bare words in every case
    "UNSUBSCRIBE", "cancel", "end", "quit", "revoke", "optout", "stopall", "remove",
    # Unicode: fullwidth, emoji and symbols around it, zero-width characters, non-breaking spaces
    "\uff33\uff34\uff2f\uff30", "\uff53\uff54\uff4f\uff50",
    "stop 🛑", "🛑STOP🛑", "✋ Stop ✋", "STOP\u200b", "\u00a0stop\u00a0", "Stop 👍🏽",
    # Spanish, French (and Canadian French), German, Portuguese
    "PARAR", "Alto", "BAJA", "Baja por favor", "dar de baja", "cancelar", "detener",
    "ARRET", "ARRÊT", "Arrêt.", "arrêter", "DÉSABONNER", "désabonner", "Désinscrire", "TD",
    "STOPP", "Stopp bitte", "abmelden", "Abbestellen", "KÜNDIGEN", "kuendigen", "Ende",
    "SAIR", "Descadastrar", "remover",
]  # fmt: skip
OPT_IN_FORMS = [
    "START",
    "UNSTOP",
    "YES",
    "Start.",
    "start!",
    "Start please",
    "\uff33\uff34\uff21\uff32\uff34",
    "unstop 🙂",
    "Yes!",
]
HELP_FORMS = ["HELP", "INFO", "AYUDA", "Help?", "help me", "HELP!!", "info.", "Aide", "HILFE", "Ajuda"]
SENTENCES = [
    "please stop calling me at work",
    "I can't stop laughing",
    "Stop texting me about the sale",
    "Can you opt me out of the promos but keep order updates?",
    "Pls don't text me anymore",
]


def _outbound(customer):
    return list(Interaction.objects.filter(customer=customer, direction="outbound").order_by("pk"))


@pytest.mark.parametrize("body", OPT_OUT_FORMS)
def test_optout_keyword_kinds_every_form_opts_out_with_one_confirmation(workspace, sms, body):
    message = inbound(sms, "+14155550100", body)
    customer = message.customer
    assert keyword_match(body).keyword == Keyword.OPT_OUT
    assert consent_state(customer=customer, channel="sms", purpose="transactional") == "opted_out"
    assert consent_state(customer=customer, channel="sms", purpose="marketing") == "opted_out"
    event = ConsentEvent.objects.get(customer=customer)
    assert (event.source, event.purpose, event.status) == ("sms_keyword", "", "opted_out")
    assert event.evidence["interaction_id"] == message.pk
    [reply] = _outbound(customer)
    assert "unsubscribed" in reply.body
    assert (reply.status, reply.idempotency_key) == ("queued", f"keyword:{message.pk}")
    assert reply.metadata["purpose"] == "compliance"
    assert "possible_revocation" not in message.metadata


@pytest.mark.parametrize("body", OPT_IN_FORMS)
def test_optout_keyword_kinds_every_start_form_opts_back_in(workspace, sms, body):
    inbound(sms, "+14155550100", "STOP")
    back = inbound(sms, "+14155550100", body)
    assert consent_state(customer=back.customer, channel="sms", purpose="transactional") == "opted_in"
    replies = _outbound(back.customer)
    assert len(replies) == 2
    assert "subscribed again" in replies[1].body
    assert replies[1].idempotency_key == f"keyword:{back.pk}"


@pytest.mark.parametrize("body", HELP_FORMS)
def test_optout_keyword_kinds_every_help_form_gets_the_help_text(workspace, sms, body):
    workspace.help_text = "Acme support: call 555-0100. Reply STOP to opt out."
    workspace.save()
    message = inbound(sms, "+14155550100", body)
    [reply] = _outbound(message.customer)
    assert reply.body == workspace.help_text
    assert not ConsentEvent.objects.filter(customer=message.customer).exists()


@pytest.mark.parametrize("second", ["STOP", "Stop.", "opt out", "ARRÊT"])
def test_optout_keyword_kinds_stop_twice_confirms_once(workspace, sms, second):
    first = inbound(sms, "+14155550100", "STOP")
    again = inbound(sms, "+14155550100", second)
    assert ConsentEvent.objects.filter(customer=first.customer).count() == 1
    assert len(_outbound(first.customer)) == 1
    # Both messages stay on the timeline.
    assert Interaction.objects.filter(customer=first.customer, direction="inbound").count() == 2
    assert again.customer_id == first.customer_id


def test_optout_keyword_kinds_start_twice_confirms_once(workspace, sms):
    inbound(sms, "+14155550100", "STOP")
    inbound(sms, "+14155550100", "START")
    inbound(sms, "+14155550100", "start")
    last = inbound(sms, "+14155550100", "Start.")
    assert ConsentEvent.objects.filter(customer=last.customer).count() == 2
    assert len(_outbound(last.customer)) == 2


def test_optout_keyword_kinds_stop_after_a_marketing_opt_in_is_recorded_again(workspace, sms):
    """A repeat is a STOP that changes nothing; after the customer opted in to something since, it does."""
    first = inbound(sms, "+14155550100", "STOP")
    consent_record(
        customer=first.customer, channel="sms", purpose="marketing", status="opted_in", source="webchat_form"
    )
    again = inbound(sms, "+14155550100", "stop!")
    assert consent_state(customer=again.customer, channel="sms", purpose="marketing") == "opted_out"
    assert len(_outbound(again.customer)) == 2


@pytest.mark.parametrize("body", SENTENCES)
def test_optout_keyword_kinds_stop_inside_a_sentence_is_flagged_not_applied(workspace, sms, body):
    message = inbound(sms, "+14155550100", body)
    assert keyword_match(body).keyword is None
    assert not ConsentEvent.objects.filter(customer=message.customer).exists()
    assert _outbound(message.customer) == []
    assert message.metadata["possible_revocation"]["term"]
    stored = Interaction.objects.get(pk=message.pk)
    assert stored.metadata["possible_revocation"] == message.metadata["possible_revocation"]


@pytest.mark.parametrize(
    "body", ["Hello, can I change my order?", "See you at the end of the week", "yes please"]
)
def test_optout_keyword_kinds_ordinary_messages_are_not_flagged(workspace, sms, body):
    message = inbound(sms, "+14155550100", body)
    assert "possible_revocation" not in message.metadata
    assert _outbound(message.customer) == []


def test_optout_keyword_kinds_possible_revocation_is_visible_in_the_console(
    workspace, sms, agent_client: Client
):
    flagged = inbound(sms, "+14155550100", "please stop calling me at work")
    plain = inbound(sms, "+14155550199", "what time do you open?")
    page = agent_client.get(f"/conversations/{flagged.conversation_id}/").content.decode()
    assert "Possible opt-out" in page
    assert "badge-revocation" in page
    assert (
        "Possible opt-out"
        not in agent_client.get(f"/conversations/{plain.conversation_id}/").content.decode()
    )
    profile = agent_client.get(f"/customers/{flagged.customer_id}/").content.decode()
    assert "Possible opt-out" in profile


def test_optout_keyword_kinds_stop_through_the_twilio_webhook(client, sms_channel):
    params = {
        "MessageSid": "SM" + "b" * 32,
        "AccountSid": sms_channel.config["account_sid"],
        "From": "+14155550100",
        "To": sms_channel.address,
        "Body": "Stop.",
        "NumMedia": "0",
    }
    for _ in range(2):  # Twilio retries the webhook
        assert post_twilio(client, sms_channel, "inbound", params).status_code == 200
    message = Interaction.objects.get(direction="inbound")
    assert consent_state(customer=message.customer, channel="sms", purpose="transactional") == "opted_out"
    assert len(_outbound(message.customer)) == 1
    params = {**params, "MessageSid": "SM" + "c" * 32, "Body": "STOP!"}
    assert post_twilio(client, sms_channel, "inbound", params).status_code == 200
    assert ConsentEvent.objects.filter(customer=message.customer).count() == 1
    assert len(_outbound(message.customer)) == 1


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("  Stop. 🛑", "STOP"),
        ("Opt-out!", "OPT OUT"),
        ("ARRÊT", "ARRET"),
        ("\uff24\u00c9\uff33\uff21\uff22\uff2f\uff2e\uff2e\uff25\uff32", "DESABONNER"),
        ("don't\u200btext", "DONTTEXT"),
        ("Kündigen", "KUNDIGEN"),
        ("STRAẞE", "STRASSE"),
        ("", ""),
    ],
)
def test_optout_keyword_kinds_normalization(raw, normalized):
    assert keyword_normalize(raw) == normalized


def test_optout_keyword_kinds_decision_records_consent_and_returns_the_reply(workspace, sms):
    """The decision function sends nothing: it records the consent change and hands back the reply."""
    message = inbound(sms, "+14155550100", "hello")  # recorded through the real path, no keyword
    message.body = "Stop please"
    decision = sms_keyword_decide(interaction=message)
    assert decision is not None
    assert (decision.keyword, decision.consent_status, decision.repeat) == (
        Keyword.OPT_OUT,
        "opted_out",
        False,
    )
    assert decision.reply is not None
    assert "unsubscribed" in decision.reply
    assert _outbound(message.customer) == []  # nothing was queued by the decision itself
    again = sms_keyword_decide(interaction=message)
    assert again is not None
    assert (again.repeat, again.reply, again.consent_status) == (True, None, None)


def test_optout_keyword_kinds_customers_does_not_send_through_engagement_services():
    """Issue 8, item 3: keyword handling decides; ``customers`` imports no ``engagement.services``."""
    for path in (
        "customers/keywords.py",
        "customers/inbound.py",
        "customers/consent.py",
        "customers/lookup.py",
    ):
        tree = ast.parse((ROOT / path).read_text())
        imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)] + [
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        ]
        assert not [m for m in imported if m.startswith(("engagement.services", "engagement.api"))], path
