"""The guard pipeline every automated send passes (campaigns now; journeys and automation rules next).

:func:`send_guard_check` decides, in this order, and stops at the first guard that says no:

1. **consent** for the purpose (``customers.consent.consent_check_send``: marketing needs an opt-in), per
   candidate channel, together with the address (no address on a channel → the next channel);
2. **suppression**: the newest consent row on the channel came from a hard bounce or a spam complaint
   (the Event Webhook records both); an erased customer; a merged-away customer is replaced by the
   survivor (``customers.merging.customer_current``) and the survivor is checked;
3. **membership** of the segment, re-checked now (``segment_contains``);
4. **quiet hours** in the recipient's local time (marketing only): *hold* until the window ends;
5. **frequency cap** per channel kind per customer (marketing only), atomic: the customer's row is locked
   (``SELECT … FOR UPDATE``) and the caller queues the message in the same transaction, so concurrent
   campaigns for one customer count each other's sends and the cap is never exceeded;
6. **pacing** per sender: a token bucket in Redis shared by every campaign and journey using the
   sender (a Twilio number or messaging service, a SendGrid account): *hold* for the wait.

Channel fallback: the candidates are tried in order (the customer's preferred kind first when the caller
asks); a channel without an address, consent or past suppression is passed over, so the first channel
with all three is chosen. Fallback after a hard provider failure is the caller's (it calls again with
``start_at`` moved on); a soft failure is retried on the same channel by the outbound task.

Deciding only: this module records nothing; the caller (``engagement/campaigns/sending.py``) stores the
decision on its recipient row and queues the message inside the transaction that called it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import redis
from django.conf import settings
from django.utils import timezone

from customers.consent import SendPurpose, consent_allows_q, consent_check_send
from customers.merging import customer_current
from customers.models import ConsentEvent, Customer, Identity
from customers.profile import customer_timezone
from customers.services import customer_primary_address
from engagement.campaigns.schedule import quiet_hours_end, zone_get
from engagement.models import CampaignSettings, Channel, Interaction, InteractionStatus, Segment
from engagement.models.channels import CHANNEL_IDENTITY_KIND
from engagement.segments.services import segment_contains, segment_members_among

SUPPRESSING_SOURCES = ("hard_bounce", "spam_report")
DEFAULT_QUIET_CHANNELS = ("sms", "voice")


@dataclass(frozen=True)
class GuardDecision:
    """``action`` is "send", "skip" or "hold". For "send": ``channel``, ``address``, ``customer`` (the
    survivor when the recipient was merged away) and ``channel_index`` (its place among the candidates).
    For "hold": ``until`` (UTC). ``reason`` is a short code ("consent:no_marketing_consent",
    "quiet_hours", "frequency_cap"…), ``detail`` a sentence for people."""

    action: str
    reason: str = ""
    detail: str = ""
    customer: Customer | None = None
    channel: Channel | None = None
    address: str = ""
    channel_index: int = 0
    until: dt.datetime | None = None
    tried: list[str] = field(default_factory=list)


def campaign_settings_for(*, workspace_id: int) -> CampaignSettings:
    """The workspace's sending rules (an unsaved default row when it has none)."""
    found = CampaignSettings.objects.filter(workspace_id=workspace_id).first()
    return found or CampaignSettings(workspace_id=workspace_id)


def candidate_channels(
    *, channels: Sequence[Channel], customer: Customer, prefer_customer: bool
) -> list[Channel]:
    """The order channels are tried for ``customer``: the campaign's order, with the customer's preferred
    kind moved first when ``prefer_customer``; inactive channels left out."""
    ordered = [c for c in channels if c.is_active]
    if prefer_customer and customer.preferred_channel:
        ordered.sort(key=lambda c: c.kind != customer.preferred_channel)
    return ordered


def suppression_reason(*, customer: Customer, channel_kind: str) -> str:
    """ "hard_bounce" / "spam_report" when the newest consent row on the channel came from one (a later
    opt-in lifts it), else ""."""
    newest = (
        ConsentEvent.objects.filter(
            workspace_id=customer.workspace_id, customer=customer, channel=channel_kind
        )
        .order_by("-occurred_at", "-id")
        .values_list("source", flat=True)
        .first()
    )
    return newest if newest in SUPPRESSING_SOURCES else ""


def frequency_cap_reached(
    *, customer: Customer, channel_kind: str, count: int, days: int, now: dt.datetime
) -> bool:
    """Has ``customer`` had ``count`` marketing messages on ``channel_kind`` in the last ``days`` days?

    Locks the customer's row first (held until the caller's transaction ends), so two sends racing for
    the same customer are serialized and the second one counts the first."""
    Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk", flat=True).first()
    sent = (
        Interaction.objects.filter(
            customer=customer,
            direction="outbound",
            channel__kind=channel_kind,
            created_at__gte=now - dt.timedelta(days=days),
            metadata__purpose=SendPurpose.MARKETING,
        )
        .exclude(status__in=[InteractionStatus.BLOCKED, InteractionStatus.FAILED])
        .exclude(metadata__contains={"test": True})
        .count()
    )
    return sent >= count


# ---------------------------------------------------------------- pacing: a shared token bucket

_BUCKET = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local state = redis.call('HMGET', key, 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate / 1000.0)
local granted = math.min(want, math.floor(tokens))
if granted < 0 then granted = 0 end
tokens = tokens - granted
local wait = 0
if granted < want then
  wait = math.ceil((1 - tokens) * 1000.0 / rate)
end
redis.call('HSET', key, 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', key, 60000)
return {granted, wait}
"""

# The provider-side schedule (GCRA, "virtual scheduling"): each call reserves the next free slot, one
# every 1/rate seconds, never earlier than now; the state is the theoretical arrival time of the next slot.
_SLOTS = """
local key = KEYS[1]
local interval = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', key)) or now
if tat < now then tat = now end
redis.call('SET', key, tat + interval * count, 'PX', math.ceil(interval * count * 1000) + 60000)
return tostring(tat)
"""


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@functools.cache
def _bucket_script() -> object:
    return _redis().register_script(_BUCKET)


@functools.cache
def _slots_script() -> object:
    return _redis().register_script(_SLOTS)


def sender_key(channel: Channel) -> str:
    """The sender a rate belongs to: a Twilio messaging service or number, a SendGrid account (the API
    key, hashed), else the channel."""
    config = channel.config or {}
    if config.get("messaging_service_sid"):
        ident = f"ms:{config['messaging_service_sid']}"
    elif channel.provider == "sendgrid" and config.get("api_key"):
        ident = "sg:" + hashlib.sha256(str(config["api_key"]).encode()).hexdigest()[:16]
    else:
        ident = f"{channel.kind}:{channel.address}"
    return f"pace:{channel.provider}:{ident}"


def sender_rate(channel: Channel) -> float:
    """Messages per second for the channel's sender: ``config["rate_per_second"]`` or the default."""
    return float((channel.config or {}).get("rate_per_second") or settings.CAMPAIGN_DEFAULT_RATE_PER_SECOND)


def pacing_take_many(*, channel: Channel, count: int) -> tuple[int, float]:
    """Take up to ``count`` tokens from the sender's bucket in ONE Redis call (a Lua script, atomic, shared
    by every process, campaign and journey using the sender): (tokens taken, seconds until the next
    token when fewer than ``count`` were taken, else 0.0). The bucket holds at most one second's worth
    (``rate`` tokens): it admits messages to the queue at the sender's rate; the provider calls
    themselves are spaced by :func:`pacing_send_slot`."""
    if count <= 0:
        return 0, 0.0
    rate = sender_rate(channel)
    burst = max(1.0, rate)
    granted, wait_ms = _bucket_script()(  # type: ignore[operator]
        keys=[sender_key(channel)], args=[rate, burst, int(time.time() * 1000), count]
    )
    return int(granted), int(wait_ms) / 1000.0


def pacing_take(*, channel: Channel) -> float:
    """Take one token from the sender's bucket: 0.0 when taken, else the seconds to wait for one
    (:func:`pacing_take_many` with ``count=1``)."""
    granted, wait = pacing_take_many(channel=channel, count=1)
    return 0.0 if granted else wait


def pacing_send_slot(*, channel: Channel) -> float:
    """Reserve the sender's next provider-call slot and return the seconds until it (0.0: now).

    The slots of a sender are 1/rate seconds apart and never earlier than now (GCRA's theoretical
    arrival time in Redis, one atomic script shared by every worker), so calls made at their slots never
    put more than ``rate`` + 1 calls in any one-second window, however many workers send and however
    the queue bunched them. The slots run at ``PACING_SEND_HEADROOM`` (0.96) of the rate: a call that
    left late (a busy worker) and the next one on time reach the provider closer together than their
    slots, and the provider counts arrivals. Idle time is not banked (no burst). The caller sleeps
    until the slot, then calls the provider. Source: the token-bucket/GCRA equivalence (ITU-T I.371);
    CAMPAIGNS.md lesson 8."""
    interval = 1.0 / max(sender_rate(channel) * settings.PACING_SEND_HEADROOM, 0.001)
    now = time.time()
    slot = float(
        _slots_script()(  # type: ignore[operator]
            keys=[sender_key(channel) + ":slots"], args=[interval, now, 1]
        )
    )
    return max(0.0, slot - now)


# ---------------------------------------------------------------- a batch's facts, read set-based


@dataclass(frozen=True)
class GuardPrefetch:
    """What :func:`send_guard_prefetch` read for a batch: ``clear`` maps (customer id, channel id) → the
    address for every customer of the batch who passes that channel's address, consent and suppression
    checks; ``members`` are those of ``checked`` in the segment now. Customers outside (merged-away
    survivors, a failing check whose reason is wanted) take the per-customer queries."""

    checked: frozenset[int]
    clear: dict[tuple[int, int], str]
    members: frozenset[int] | None


def send_guard_prefetch(
    *,
    customer_ids: Sequence[int],
    channels: Sequence[Channel],
    purpose: str,
    segment: Segment | None,
    workspace_id: int,
    now: dt.datetime,
) -> GuardPrefetch:
    """The channel checks and the segment re-check of :func:`send_guard_check` for a whole batch, in one
    query for membership and three per channel (the newest address of its kind, the consent rule as SQL
    — ``customers.consent.consent_allows_q``, the same rule the segments use — and the newest consent
    row's source for suppression) instead of ~5 queries per customer. Only passes are recorded: a
    customer who fails a check is checked again one by one, so the decision keeps its reason."""
    ids = sorted(set(customer_ids))
    members = None
    if segment is not None:
        members = frozenset(segment_members_among(segment=segment, customer_ids=ids, now=now))
    clear: dict[tuple[int, int], str] = {}
    live = list(
        Customer.objects.filter(
            workspace_id=workspace_id, pk__in=ids, merged_into__isnull=True, erased_at__isnull=True
        ).values_list("pk", flat=True)
    )
    for channel in channels:
        if not channel.is_active or not live:
            continue
        kind = CHANNEL_IDENTITY_KIND[channel.kind]
        addresses = dict(
            Identity.objects.filter(workspace_id=workspace_id, customer_id__in=live, kind=kind)
            .order_by("customer_id", "-last_seen_at", "-id")
            .distinct("customer_id")
            .values_list("customer_id", "value")
        )
        if not addresses:
            continue
        allowed = set(
            Customer.objects.filter(pk__in=list(addresses))
            .filter(consent_allows_q(channel_kind=channel.kind, purpose=purpose))
            .values_list("pk", flat=True)
        )
        suppressed: set[int] = set()
        if purpose != SendPurpose.COMPLIANCE:
            newest = (
                ConsentEvent.objects.filter(
                    workspace_id=workspace_id, customer_id__in=list(allowed), channel=channel.kind
                )
                .order_by("customer_id", "-occurred_at", "-id")
                .distinct("customer_id")
                .values_list("customer_id", "source")
            )
            suppressed = {pk for pk, source in newest if source in SUPPRESSING_SOURCES}
        for pk in allowed - suppressed:
            if addresses[pk]:
                clear[(pk, channel.pk)] = addresses[pk]
    return GuardPrefetch(checked=frozenset(ids), clear=clear, members=members)


# ---------------------------------------------------------------- the pipeline


def send_guard_check(
    *,
    customer: Customer,
    channels: Sequence[Channel],
    purpose: str,
    segment: Segment | None = None,
    now: dt.datetime | None = None,
    prefer_customer_channel: bool = True,
    start_at: int = 0,
    rules: CampaignSettings | None = None,
    pace: bool = True,
    prefetch: GuardPrefetch | None = None,
) -> GuardDecision:
    """May an automated ``purpose`` message go to ``customer`` now, and on which channel?

    ``channels`` are the candidates in the caller's order; ``start_at`` skips the first candidates
    (already tried and failed hard). Run it INSIDE the transaction that queues the message: the
    frequency cap locks the customer's row until that transaction ends. Order and reasons: module
    docstring. Never raises for a customer's state; returns the decision. ``prefetch``: a batch's
    facts from :func:`send_guard_prefetch` (the same checks, read set-based).
    """
    now = now or timezone.now()
    rules = rules or campaign_settings_for(workspace_id=customer.workspace_id)
    if customer.merged_into_id is not None:
        survivor = customer_current(workspace=customer.workspace, customer_id=customer.pk)
        if survivor is None:
            return GuardDecision("skip", "suppressed:merged", "the customer was merged away and is gone")
        customer = survivor
    candidates = candidate_channels(
        channels=channels, customer=customer, prefer_customer=prefer_customer_channel
    )
    tried: list[str] = []
    chosen: tuple[int, Channel, str] | None = None
    first_reason, first_detail = "", ""
    for index, channel in enumerate(candidates):
        if index < start_at:
            continue
        known = prefetch.clear.get((customer.pk, channel.pk)) if prefetch is not None else None
        if known:
            reason, detail, address = "", "", known
        else:
            reason, detail, address = _channel_check(customer=customer, channel=channel, purpose=purpose)
        if not reason:
            chosen = (index, channel, address)
            break
        tried.append(f"{channel.kind}:{reason}")
        if not first_reason:
            first_reason, first_detail = reason, detail
    if customer.erased_at is not None:
        return GuardDecision("skip", "suppressed:erased", "the customer was erased", customer=customer)
    if chosen is None:
        if not candidates[start_at:]:
            first_reason = first_reason or "no_channel"
            first_detail = first_detail or "no channel left to try"
        return GuardDecision("skip", first_reason, first_detail, customer=customer, tried=tried)
    index, channel, address = chosen
    base = {
        "customer": customer,
        "channel": channel,
        "address": address,
        "channel_index": index,
        "tried": tried,
    }
    if prefetch is not None and prefetch.members is not None and customer.pk in prefetch.checked:
        member = customer.pk in prefetch.members
    else:
        member = segment is None or segment_contains(segment=segment, customer=customer, now=now)
    if segment is not None and not member:
        return GuardDecision("skip", "left_segment", "no longer in the segment at send time", **base)  # type: ignore[arg-type]
    marketing = purpose == SendPurpose.MARKETING
    quiet_channels = rules.quiet_channels or DEFAULT_QUIET_CHANNELS
    if marketing and rules.quiet_hours_enabled and channel.kind in quiet_channels:
        zone_name, _ = customer_timezone(customer=customer)
        zone = zone_get(zone_name or "", fallback=rules.default_timezone)
        until = quiet_hours_end(now=now, zone=zone, start=rules.quiet_start, end=rules.quiet_end)
        if until is not None:
            return GuardDecision(
                "hold",
                "quiet_hours",
                f"quiet hours in {zone.key} until {until:%Y-%m-%d %H:%M} UTC",
                until=until,
                **base,  # type: ignore[arg-type]
            )
    cap = (rules.frequency_caps or {}).get(channel.kind) if marketing else None
    if cap and frequency_cap_reached(
        customer=customer, channel_kind=channel.kind, count=int(cap["count"]), days=int(cap["days"]), now=now
    ):
        return GuardDecision(
            "skip",
            "frequency_cap",
            f"already {cap['count']} marketing {channel.kind} messages in {cap['days']} days",
            **base,  # type: ignore[arg-type]
        )
    if pace:
        wait = pacing_take(channel=channel)
        if wait > 0:
            return GuardDecision(
                "hold",
                "pacing",
                f"sender at its rate; {wait:.3f} s",
                until=now + dt.timedelta(seconds=wait),
                **base,  # type: ignore[arg-type]
            )
    return GuardDecision("send", **base)  # type: ignore[arg-type]


def _channel_check(*, customer: Customer, channel: Channel, purpose: str) -> tuple[str, str, str]:
    """(reason, detail, address): reason "" when the channel can be used."""
    address = customer_primary_address(customer=customer, kind=CHANNEL_IDENTITY_KIND[channel.kind])
    if not address:
        return "no_address", f"no {CHANNEL_IDENTITY_KIND[channel.kind]} for {channel.kind}", ""
    decision = consent_check_send(customer=customer, channel_kind=channel.kind, purpose=purpose)
    if not decision.allowed:
        return f"consent:{decision.reason}", decision.detail, address
    suppressed = suppression_reason(customer=customer, channel_kind=channel.kind)
    if suppressed and purpose != SendPurpose.COMPLIANCE:
        return f"suppressed:{suppressed}", f"suppressed on {channel.kind} after a {suppressed}", address
    return "", "", address


# ---------------------------------------------------------------- the outbox's release check

RELEASE_GO, RELEASE_HOLD, RELEASE_CANCEL = "go", "hold", "cancel"


def send_release_check(*, interaction: Interaction) -> str:
    """Called by the outbound task, under the interaction's row lock, just before the provider call:
    "go", "hold" (the campaign run it belongs to is paused: leave it queued, the run's resume hands it
    back) or "cancel" (the run was cancelled: never send). Messages of no campaign always "go"."""
    run_id = (interaction.metadata or {}).get("campaign_run_id")
    if not run_id:
        return RELEASE_GO
    from engagement.models import CampaignRun, RunState

    state = CampaignRun.objects.filter(pk=run_id).values_list("state", flat=True).first()
    if state == RunState.PAUSED:
        return RELEASE_HOLD
    if state == RunState.CANCELLED:
        return RELEASE_CANCEL
    return RELEASE_GO


def send_release_check_many(*, run_ids: set[int]) -> dict[int, str]:
    """:func:`send_release_check` for the campaign runs of a batch in one query: run id → "go", "hold"
    or "cancel"."""
    from engagement.models import CampaignRun, RunState

    states = dict(CampaignRun.objects.filter(pk__in=run_ids).values_list("pk", "state"))
    out = {}
    for run_id in run_ids:
        state = states.get(run_id)
        out[run_id] = (
            RELEASE_HOLD
            if state == RunState.PAUSED
            else RELEASE_CANCEL
            if state == RunState.CANCELLED
            else RELEASE_GO
        )
    return out


__all__ = [
    "RELEASE_CANCEL",
    "RELEASE_GO",
    "RELEASE_HOLD",
    "GuardDecision",
    "GuardPrefetch",
    "campaign_settings_for",
    "frequency_cap_reached",
    "pacing_send_slot",
    "pacing_take",
    "pacing_take_many",
    "send_guard_check",
    "send_guard_prefetch",
    "send_release_check",
    "send_release_check_many",
    "sender_key",
]
