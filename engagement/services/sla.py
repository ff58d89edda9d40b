"""Service level agreements: policies, business hours, the clocks of a conversation, breach detection.

A conversation runs up to three clocks under the first active :class:`SlaPolicy` covering its channel
(:func:`sla_policy_for`), the same three Zendesk and Intercom use:

* **first response** — from the customer's first message in the conversation to the first reply a
  person wrote to that customer (an outbound interaction with an author, on any channel: the console
  answers the customer, not the channel);
* **next response** — once a person has answered, from the oldest customer message since the latest
  human reply until the next one;
* **resolution** — from the conversation's opening (or the end of its latest resolution, when it was
  reopened) until it is resolved.

Targets count business minutes when ``business_hours_only`` (the workspace's :class:`BusinessHours`,
per ISO weekday in ``Workspace.timezone``, DST-correct: intervals are built as local wall-clock times
and compared in UTC); otherwise wall-clock minutes. Pending conversations keep their clocks running.

:func:`sla_breaches_detect` (beat task ``engagement.tasks.sla_breaches_detect``, every
``SLA_DETECT_INTERVAL_SECONDS``) records each clock past due as one :class:`SlaBreach` (unique per
conversation, metric and start; ``INSERT … ON CONFLICT DO NOTHING``) and publishes ``sla.breached``
for the rows it inserted, in the same transaction (outbox): one event per breach however often it runs.
A first response that came late is a breach too, found on the next run.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from engagement import events
from engagement.errors import NotFound, ValidationFailed
from engagement.models import BusinessHours, Conversation, SlaMetric, SlaPolicy, Workspace
from engagement.models.channels import ChannelKind
from engagement.models.conversations import ConversationStatus

Weekly = dict[int, list[tuple[time, time]]]
WARNING_FRACTION = 0.25  # a clock with less than a quarter of its target left is shown as a warning
MAX_DAYS_AHEAD = 400


class SlaSettingsInvalid(ValidationFailed):
    code = "sla_settings_invalid"


# ---------------------------------------------------------------- business hours


def _parse_time(raw: str) -> time:
    if raw == "24:00":
        return time.max
    try:
        hours, minutes = (int(part) for part in raw.split(":"))
        return time(hours, minutes)
    except (ValueError, TypeError) as exc:
        raise SlaSettingsInvalid(f"{raw!r} is not a time of day (HH:MM)", field="weekly") from exc


def business_hours_parse(weekly: dict[str, Any]) -> Weekly:
    """``{"1": [["09:00", "17:00"]], …}`` (ISO weekday → intervals) as times; raises
    :class:`SlaSettingsInvalid` (field ``weekly``) for an unknown day, a malformed time or an interval
    that ends before it starts."""
    parsed: Weekly = {}
    for day, intervals in (weekly or {}).items():
        if str(day) not in {"1", "2", "3", "4", "5", "6", "7"}:
            raise SlaSettingsInvalid(f"unknown weekday {day!r} (1 Monday … 7 Sunday)", field="weekly")
        spans = []
        for interval in intervals or []:
            if not isinstance(interval, list | tuple) or len(interval) != 2:
                raise SlaSettingsInvalid("each interval is [start, end]", field="weekly")
            start, end = _parse_time(str(interval[0])), _parse_time(str(interval[1]))
            if end <= start:
                raise SlaSettingsInvalid(f"{interval[0]}-{interval[1]} ends before it starts", field="weekly")
            spans.append((start, end))
        if spans:
            parsed[int(day)] = sorted(spans)
    return parsed


def _zone(workspace: Workspace) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(workspace.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _local(day: date, at: time, zone: zoneinfo.ZoneInfo) -> datetime:
    if at == time.max:
        return datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def business_deadline(*, start: datetime, minutes: int, weekly: Weekly, zone: zoneinfo.ZoneInfo) -> datetime:
    """``start`` plus ``minutes`` of open time (UTC). Without hours (empty ``weekly``) wall-clock
    minutes. A start outside the hours counts from the next opening."""
    if not weekly:
        return start + timedelta(minutes=minutes)
    remaining = timedelta(minutes=minutes)
    start = start.astimezone(UTC)
    day = start.astimezone(zone).date() - timedelta(days=1)  # an interval may span midnight UTC
    for _ in range(MAX_DAYS_AHEAD):
        for open_at, close_at in weekly.get(day.isoweekday(), []):
            opens, closes = _local(day, open_at, zone), _local(day, close_at, zone)
            begin = max(opens, start)
            if closes <= begin:
                continue
            if begin + remaining <= closes:
                return begin + remaining
            remaining -= closes - begin
        day += timedelta(days=1)
    return start + timedelta(minutes=minutes)


def business_hours_for(*, workspace: Workspace) -> Weekly:
    row = BusinessHours.objects.filter(workspace=workspace).first()
    return business_hours_parse(row.weekly) if row else {}


def business_hours_set(*, workspace: Workspace, weekly: dict[str, Any]) -> BusinessHours:
    """Replace the workspace's hours (validated by :func:`business_hours_parse`)."""
    business_hours_parse(weekly)
    clean = {str(k): [[str(a), str(b)] for a, b in v] for k, v in weekly.items() if v}
    row, _ = BusinessHours.objects.update_or_create(workspace=workspace, defaults={"weekly": clean})
    return row


# ---------------------------------------------------------------- policies


def sla_policy_save(
    *,
    workspace: Workspace,
    name: str,
    first_response_minutes: int | None,
    next_response_minutes: int | None,
    resolution_minutes: int | None,
    business_hours_only: bool = True,
    channel_kinds: Iterable[str] = (),
    is_active: bool = True,
    position: int = 0,
    policy: SlaPolicy | None = None,
) -> SlaPolicy:
    """Create (or, given ``policy``, update) a policy. Raises :class:`SlaSettingsInvalid` for a missing
    name, no target at all, a target under 1 minute, or an unknown channel kind."""
    if not name.strip():
        raise SlaSettingsInvalid("give the policy a name", field="name")
    targets = {
        "first_response_minutes": first_response_minutes,
        "next_response_minutes": next_response_minutes,
        "resolution_minutes": resolution_minutes,
    }
    if all(v is None for v in targets.values()):
        raise SlaSettingsInvalid("set at least one target", field="first_response_minutes")
    for field, value in targets.items():
        if value is not None and value < 1:
            raise SlaSettingsInvalid("a target is at least 1 minute", field=field)
    kinds = sorted(set(channel_kinds))
    unknown = set(kinds) - set(ChannelKind.values)
    if unknown:
        raise SlaSettingsInvalid(f"unknown channel kind {sorted(unknown)[0]!r}", field="channel_kinds")
    if policy is None:
        policy = SlaPolicy(workspace=workspace)
    elif policy.workspace_id != workspace.pk:
        raise SlaSettingsInvalid("policy of another workspace")
    policy.name = name.strip()
    policy.first_response_minutes = first_response_minutes
    policy.next_response_minutes = next_response_minutes
    policy.resolution_minutes = resolution_minutes
    policy.business_hours_only = business_hours_only
    policy.channel_kinds = kinds
    policy.is_active = is_active
    policy.position = position
    policy.save()
    return policy


def sla_policy_delete(*, workspace: Workspace, policy_id: int) -> None:
    """Delete a policy of ``workspace`` (its recorded breaches stay, without a policy). Raises
    ``NotFound`` for a policy of another workspace or none."""
    deleted, _ = SlaPolicy.objects.filter(workspace=workspace, pk=policy_id).delete()
    if not deleted:
        raise NotFound("no such SLA policy")


def sla_policies_active(*, workspace_id: int) -> list[SlaPolicy]:
    return list(
        SlaPolicy.objects.filter(workspace_id=workspace_id, is_active=True).order_by("position", "id")
    )


def sla_policy_for(policies: list[SlaPolicy], channel_kind: str) -> SlaPolicy | None:
    """The first of ``policies`` (in order) that covers ``channel_kind``."""
    for policy in policies:
        if not policy.channel_kinds or channel_kind in policy.channel_kinds:
            return policy
    return None


# ---------------------------------------------------------------- clocks


@dataclass(frozen=True)
class SlaClock:
    metric: str
    label: str
    policy_id: int
    started_at: datetime
    due_at: datetime
    met_at: datetime | None
    target_minutes: int

    def breached(self, now: datetime) -> bool:
        return (self.met_at or now) > self.due_at

    def remaining(self, now: datetime) -> timedelta:
        return self.due_at - now

    def state(self, now: datetime) -> str:
        """ "met", "breached", "warning" (under a quarter of the target left) or "running"."""
        if self.met_at is not None:
            return "breached" if self.met_at > self.due_at else "met"
        left = self.remaining(now)
        if left <= timedelta(0):
            return "breached"
        if left < timedelta(minutes=self.target_minutes * WARNING_FRACTION):
            return "warning"
        return "running"


@dataclass(frozen=True)
class ConversationFacts:
    conversation_id: int
    customer_id: int
    workspace_id: int
    status: str
    channel_kind: str
    created_at: datetime
    first_inbound_at: datetime | None
    first_human_at: datetime | None
    last_human_at: datetime | None
    waiting_since: datetime | None
    last_resolved_at: datetime | None


_FACTS_SQL = """
SELECT c.id, c.customer_id, c.workspace_id, c.status, ch.kind, c.created_at,
       fi.first_in, h.first_human, h.last_human, w.waiting_since, r.last_resolved
  FROM engagement_conversation c
  JOIN engagement_channel ch ON ch.id = c.channel_id
  LEFT JOIN LATERAL (
      SELECT min(i.created_at) AS first_in FROM engagement_interaction i
       WHERE i.conversation_id = c.id AND i.direction = 'inbound'
  ) fi ON true
  LEFT JOIN LATERAL (
      SELECT min(o.created_at) AS first_human, max(o.created_at) AS last_human
        FROM engagement_interaction o
       WHERE o.customer_id = c.customer_id AND o.direction = 'outbound' AND o.author_id IS NOT NULL
         AND o.created_at >= c.created_at
  ) h ON true
  LEFT JOIN LATERAL (
      SELECT min(i.created_at) AS waiting_since FROM engagement_interaction i
       WHERE i.conversation_id = c.id AND i.direction = 'inbound'
         AND (h.last_human IS NULL OR i.created_at > h.last_human)
  ) w ON true
  LEFT JOIN LATERAL (
      SELECT max(x.resolved_at) AS last_resolved FROM engagement_conversationresolution x
       WHERE x.conversation_id = c.id
  ) r ON true
 WHERE c.id = ANY(%s)
"""


def conversation_facts(*, conversation_ids: list[int]) -> list[ConversationFacts]:
    """What the clocks need of each conversation, in one query."""
    if not conversation_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_FACTS_SQL, [list(conversation_ids)])
        return [ConversationFacts(*row) for row in cursor.fetchall()]


def sla_clocks(
    *, facts: ConversationFacts, policy: SlaPolicy, weekly: Weekly, zone: zoneinfo.ZoneInfo
) -> list[SlaClock]:
    """The clocks of one conversation under ``policy`` (see the module docstring). Pure."""
    hours = weekly if policy.business_hours_only else {}
    clocks: list[SlaClock] = []

    def clock(metric: str, start: datetime, minutes: int, met: datetime | None) -> None:
        due = business_deadline(start=start, minutes=minutes, weekly=hours, zone=zone)
        label = SlaMetric(metric).label
        clocks.append(SlaClock(metric, str(label), policy.pk, start, due, met, minutes))

    if policy.first_response_minutes and facts.first_inbound_at is not None:
        met = facts.first_human_at
        if met is not None and met < facts.first_inbound_at:
            met = facts.first_inbound_at  # the agent wrote first: nothing to answer
        clock(SlaMetric.FIRST_RESPONSE, facts.first_inbound_at, policy.first_response_minutes, met)
    if (
        policy.next_response_minutes
        and facts.first_human_at is not None
        and facts.waiting_since is not None
        and facts.status != ConversationStatus.RESOLVED
    ):
        clock(SlaMetric.NEXT_RESPONSE, facts.waiting_since, policy.next_response_minutes, None)
    if policy.resolution_minutes and facts.status != ConversationStatus.RESOLVED:
        start = max(facts.created_at, facts.last_resolved_at or facts.created_at)
        clock(SlaMetric.RESOLUTION, start, policy.resolution_minutes, None)
    return clocks


def sla_clocks_for_conversations(
    *, workspace: Workspace, conversation_ids: list[int]
) -> dict[int, list[SlaClock]]:
    """Every clock of the given conversations of ``workspace`` (conversation id → clocks; none when no
    policy covers it). Three queries whatever the number of conversations."""
    policies = sla_policies_active(workspace_id=workspace.pk)
    if not policies or not conversation_ids:
        return {}
    weekly = business_hours_for(workspace=workspace)
    zone = _zone(workspace)
    result: dict[int, list[SlaClock]] = {}
    for facts in conversation_facts(conversation_ids=conversation_ids):
        if facts.workspace_id != workspace.pk:
            continue
        policy = sla_policy_for(policies, facts.channel_kind)
        if policy is not None:
            result[facts.conversation_id] = sla_clocks(facts=facts, policy=policy, weekly=weekly, zone=zone)
    return result


def sla_clock_shown(clocks: list[SlaClock], *, now: datetime) -> SlaClock | None:
    """The clock an inbox row shows: the running one due first, else None (all met)."""
    running = [c for c in clocks if c.met_at is None]
    return min(running, key=lambda c: c.due_at) if running else None


# ---------------------------------------------------------------- breaches


def sla_breaches_detect(*, now: datetime | None = None, batch: int = 2000) -> int:
    """Record every clock past due (unresolved conversations of workspaces with an active policy, plus
    first responses that came late) as an :class:`SlaBreach` and publish ``sla.breached`` once per new
    row. Idempotent. Returns how many breaches were new."""
    now = now or timezone.now()
    created = 0
    workspace_ids = SlaPolicy.objects.filter(is_active=True).values_list("workspace_id", flat=True).distinct()
    for workspace in Workspace.objects.filter(pk__in=list(workspace_ids)):
        last_id = 0
        while True:
            ids = list(
                Conversation.objects.filter(workspace=workspace, pk__gt=last_id)
                .exclude(status=ConversationStatus.RESOLVED)
                .order_by("pk")
                .values_list("pk", flat=True)[:batch]
            )
            if not ids:
                break
            last_id = ids[-1]
            clocks = sla_clocks_for_conversations(workspace=workspace, conversation_ids=ids)
            for conversation_id, items in clocks.items():
                for clock in items:
                    if clock.breached(now):
                        created += _breach_record(
                            workspace=workspace, conversation_id=conversation_id, clock=clock, now=now
                        )
    return created


def _breach_record(*, workspace: Workspace, conversation_id: int, clock: SlaClock, now: datetime) -> int:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO engagement_slabreach
                       (workspace_id, conversation_id, policy_id, metric, started_at, due_at, breached_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (conversation_id, metric, started_at) DO NOTHING
                RETURNING id
                """,
                [
                    workspace.pk,
                    conversation_id,
                    clock.policy_id,
                    clock.metric,
                    clock.started_at,
                    clock.due_at,
                    now,
                ],
            )
            row = cursor.fetchone()
        if row is None:
            return 0
        customer_id = (
            Conversation.objects.filter(pk=conversation_id).values_list("customer_id", flat=True).first()
        )
        events.publish_on_commit(
            events.DomainEvent(
                name=events.SLA_BREACHED,
                workspace_id=workspace.pk,
                conversation_id=conversation_id,
                customer_id=customer_id,
                data={
                    "breach_id": row[0],
                    "metric": clock.metric,
                    "policy_id": clock.policy_id,
                    "started_at": clock.started_at.isoformat(),
                    "due_at": clock.due_at.isoformat(),
                },
            )
        )
    return 1
