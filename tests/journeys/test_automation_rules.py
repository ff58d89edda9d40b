"""Automation rules are one-step journeys: the data migration, the lazy conversion, the same answers."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from django.apps import apps

import engagement.migrations
from engagement.journeys.automation import automation_rules_convert
from engagement.models import AutomationRule, Enrollment, Interaction, Journey
from engagement.services.automation import automations_run
from tests import factories

from .conftest import inbound

pytestmark = pytest.mark.django_db


def _migration_function():
    for info in pkgutil.iter_modules(engagement.migrations.__path__):
        module = importlib.import_module(f"engagement.migrations.{info.name}")
        if hasattr(module, "rules_to_journeys"):
            return module.rules_to_journeys
    raise AssertionError("no migration converts automation rules")


def test_data_migration_turns_every_rule_into_a_live_one_step_journey(workspace, sms):
    voice = factories.channel_create(workspace, "voice")
    rules = [
        AutomationRule.objects.create(
            workspace=workspace,
            name="Hours",
            channel_kind="sms",
            match_type="contains",
            keywords="hours, Opening",
            template="We're open 9-5",
        ),
        AutomationRule.objects.create(
            workspace=workspace,
            name="Missed",
            trigger="call.missed",
            channel_kind="voice",
            match_type="any",
            reply_channel=sms,
            template="Sorry we missed you",
            enabled=False,
        ),
    ]
    _migration_function()(apps, None)
    journeys = {j.automation_rule_id: j for j in Journey.objects.filter(workspace=workspace)}
    hours, missed = journeys[rules[0].pk], journeys[rules[1].pk]
    assert (hours.status, hours.trigger_type, hours.reentry) == ("live", "message.received", "every_time")
    assert hours.live_version is not None
    assert missed.live_version is not None
    assert hours.live_version.number == 1
    trigger = hours.live_version.definition["trigger"]
    assert (trigger["match"], trigger["keywords"]) == ("contains", ["HOURS", "OPENING"])
    [step] = hours.live_version.definition["steps"]
    assert (step["type"], step["format"], step["template"]) == ("send", "automation", "We're open 9-5")
    assert missed.status == "paused"
    assert missed.live_version.definition["steps"][0]["channel_ids"] == [sms.pk]
    assert voice.kind == "voice"
    # Running it twice (or the lazy conversion after it) makes no second journey.
    _migration_function()(apps, None)
    assert automation_rules_convert(workspace_id=workspace.pk) == 0
    assert Journey.objects.filter(workspace=workspace).count() == 2


def test_a_rule_answers_through_the_journey_engine_once(workspace, sms):
    rule = AutomationRule.objects.create(
        workspace=workspace,
        name="Hours",
        channel_kind="sms",
        match_type="contains",
        keywords="hours",
        template="Hi {{ customer.display_name|default:'there' }}! Open 9-5.",
    )
    message = inbound(sms, "+14155550100", "What are your HOURS?")
    out = Interaction.objects.get(direction="outbound")
    assert (out.body, out.automation_rule_id, out.conversation_id) == (
        "Hi there! Open 9-5.",
        rule.pk,
        message.conversation_id,
    )
    enrollment = Enrollment.objects.get(journey__automation_rule=rule)
    assert enrollment.state == "completed"
    # A retried task returns the same answer and sends nothing more.
    assert automations_run(
        event_name="message.received", workspace_id=workspace.pk, interaction_id=message.pk
    ) == [out]
    assert Interaction.objects.filter(direction="outbound").count() == 1


def test_the_bot_never_answers_after_a_human(workspace, sms, django_user_model):
    from engagement.services.messaging import message_send

    AutomationRule.objects.create(workspace=workspace, name="all", match_type="any", template="Bot!")
    agent = factories.member(workspace)
    first = inbound(sms, "+14155550100", "hello")
    message_send(workspace=workspace, channel=sms, customer=first.customer, body="Agent here", author=agent)
    inbound(sms, "+14155550100", "thanks")
    bodies = list(
        Interaction.objects.filter(direction="outbound").order_by("id").values_list("body", flat=True)
    )
    assert bodies == ["Bot!", "Agent here"]
    run = Enrollment.objects.order_by("-id")[0].step_runs.get()
    assert (run.outcome, run.reason) == ("skipped", "human_answered")


def test_the_hourly_cap_on_automated_answers_still_holds(workspace, settings):
    settings.AUTOMATED_ANSWERS_PER_HOUR = 2
    sms = factories.channel_create(workspace, "sms")
    AutomationRule.objects.create(workspace=workspace, name="all", match_type="any", template="Auto")
    for i in range(3):
        inbound(sms, "+14155550100", f"message {i}")
    statuses = list(
        Interaction.objects.filter(direction="outbound").order_by("id").values_list("status", flat=True)
    )
    assert statuses.count("blocked") == 1
    assert len(statuses) == 3
