"""Console for marketers: campaigns (list, editor, audience, lint, preview, test send, launch, approval,
pause/resume/cancel, live progress, stats with charts, recipients, CSV export).

Thin views over ``engagement.campaigns.services``: they turn the form into the service's keyword
arguments and a ``DomainError`` into a message on the page. Every member reads; admins and marketers
write and launch (agents cannot); approving is the service's rule (an admin other than the author).
``static/console/campaigns.js`` adds the SMS segment count and encoding while typing, the schedule
fields per kind, and the Chart.js charts fed by the progress fragment that htmx polls.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, Concatenate

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from customers.consent import SendPurpose
from customers.models import Customer
from engagement.campaigns.content import CHANNEL_FIELDS, SMS_OPT_OUT_HINT, ContentInvalid
from engagement.campaigns.schedule import zone_get
from engagement.campaigns.services import (
    MAX_VARIANTS,
    CampaignInvalid,
    campaign_approve,
    campaign_audience,
    campaign_cancel,
    campaign_create,
    campaign_delete,
    campaign_launch,
    campaign_lint,
    campaign_pause,
    campaign_preview,
    campaign_preview_customers,
    campaign_recipients,
    campaign_recipients_csv,
    campaign_resume,
    campaign_stats,
    campaign_test_send,
    campaign_update,
    campaigns_progress,
)
from engagement.errors import DomainError
from engagement.models import Campaign, CampaignState, Channel, Role, Segment
from engagement.models.campaigns import LatePolicy, RecipientState, ScheduleKind
from engagement.segments.rules import known_timezones
from engagement.services.email_threading import email_html_sanitize

from .workspace import ConsoleRequest, console_render, console_view

CAMPAIGN_EDITORS = (Role.ADMIN, Role.MARKETER)
CHANNEL_SLOTS = 4
LIST_PAGE_SIZE = 50
RECIPIENTS_PAGE_SIZE = 50
ACTIVE_STATES = (CampaignState.SCHEDULED, CampaignState.RUNNING, CampaignState.PAUSED)
# (content field in the form, channel kind, key in the kind's block)
CONTENT_INPUTS = tuple(
    (f"{kind}_{name}", kind, name) for kind, (names, _) in CHANNEL_FIELDS.items() for name in names
)
VARIANT_OVERRIDES = (("sms", "body"), ("email", "subject"))
CONTENT_LABELS = (("email", "Email"), ("sms", "SMS"), ("voice", "Voice call"), ("webchat", "Webchat"))
FIELD_LABELS = {
    "subject": "Subject",
    "html": "HTML body",
    "text": "Text body",
    "body": "Message",
    "message": "Message",
}


def editors_only[**P](
    view: Callable[Concatenate[ConsoleRequest, P], HttpResponse],
) -> Callable[Concatenate[ConsoleRequest, P], HttpResponse]:
    """Admins and marketers; an agent gets 403 (agents read campaigns but never change or launch them)."""

    @functools.wraps(view)
    def wrapped(request: ConsoleRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if request.membership.role not in CAMPAIGN_EDITORS:
            reason = "Campaigns are written and launched by the workspace's marketers and admins."
            return console_render(request, "403.html", {"reason": reason}, status=403)
        return view(request, *args, **kwargs)

    return wrapped


def _campaign_or_404(request: ConsoleRequest, campaign_id: int) -> Campaign:
    campaign = (
        Campaign.objects.filter(workspace=request.workspace, pk=campaign_id)
        .select_related("segment", "workspace", "created_by", "approved_by", "launched_by")
        .first()
    )
    if campaign is None:
        raise Http404("No such campaign")
    return campaign


def _actor(request: HttpRequest) -> Any:
    return request.user if request.user.is_authenticated else None


def _can_edit(request: ConsoleRequest) -> bool:
    return request.membership.role in CAMPAIGN_EDITORS


# ---------------------------------------------------------------- list


@require_http_methods(["GET", "HEAD"])
@console_view
def campaign_list(request: ConsoleRequest) -> HttpResponse:
    """Campaigns newest first, with their state, schedule and progress (three queries per page)."""
    campaigns = (
        Campaign.objects.filter(workspace=request.workspace).select_related("segment").order_by("-created_at")
    )
    page = Paginator(campaigns, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    progress = campaigns_progress(campaign_ids=[c.pk for c in page])
    rows = [(c, progress.get(c.pk, {"targeted": 0, "finished": 0, "sent": 0})) for c in page]
    return console_render(
        request, "console/campaigns.html", {"page": page, "rows": rows, "can_edit": _can_edit(request)}
    )


# ---------------------------------------------------------------- the editor: form <-> service fields


def _int(raw: str, field: str, *, default: int | None = None) -> int | None:
    raw = (raw or "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise CampaignInvalid(f"{field} must be a whole number", field=field) from None


def _parse_local(raw: str, zone_name: str, field: str) -> dt.datetime | None:
    """A ``datetime-local`` value read as a wall-clock time in ``zone_name`` (IANA)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        naive = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise CampaignInvalid(f"{field} must be a date and time", field=field) from None
    return naive.replace(tzinfo=zone_get(zone_name)).astimezone(dt.UTC)


def _parse_date(raw: str, field: str) -> dt.date | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise CampaignInvalid(f"{field} must be a date (YYYY-MM-DD)", field=field) from None


def _parse_time(raw: str, field: str) -> dt.time | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return dt.time.fromisoformat(raw)
    except ValueError:
        raise CampaignInvalid(f"{field} must be a time (HH:MM)", field=field) from None


def posted_fields(post: QueryDict, *, previous: Campaign | None = None) -> dict[str, Any]:
    """The editor's form as ``campaign_create``/``campaign_update`` keyword arguments. Content overrides a
    variant had on fields the form does not show are kept. CampaignInvalid names a malformed field."""
    channel_ids = []
    for slot in range(CHANNEL_SLOTS):
        value = _int(post.get(f"channel_{slot}", ""), "channel_ids")
        if value is not None and value not in channel_ids:
            channel_ids.append(value)
    content: dict[str, dict[str, Any]] = {}
    for name, kind, key in CONTENT_INPUTS:
        text = post.get(name, "")
        if text.strip():
            content.setdefault(kind, {})[key] = text
    media = [line.strip() for line in post.get("sms_media_urls", "").splitlines() if line.strip()]
    if media:
        content.setdefault("sms", {})["media_urls"] = media
    old_variants = {str(v.get("key")): v for v in (previous.variants if previous else []) or []}
    variants = []
    for n in range(MAX_VARIANTS):
        key = post.get(f"variant_{n}_key", "").strip()
        if not key:
            continue
        overrides: dict[str, dict[str, Any]] = {
            kind: dict(block) for kind, block in (old_variants.get(key, {}).get("content") or {}).items()
        }
        for kind, field in VARIANT_OVERRIDES:
            override = post.get(f"variant_{n}_{kind}_{field}", "")
            if override.strip():
                overrides.setdefault(kind, {})[field] = override
            elif kind in overrides:
                overrides[kind].pop(field, None)
        variants.append(
            {
                "key": key,
                "weight": _int(post.get(f"variant_{n}_weight", ""), f"variants[{n}].weight", default=1),
                "content": {k: v for k, v in overrides.items() if v},
            }
        )
    schedule_zone = post.get("schedule_timezone", "").strip() or "UTC"
    return {
        "name": post.get("name", ""),
        "description": post.get("description", ""),
        "purpose": post.get("purpose", SendPurpose.MARKETING),
        "segment": _int(post.get("segment", ""), "segment"),
        "channel_ids": channel_ids,
        "prefer_customer_channel": post.get("prefer_customer_channel") == "on",
        "content": content,
        "variants": variants,
        "holdout_percent": _int(post.get("holdout_percent", ""), "holdout_percent", default=0),
        "schedule_kind": post.get("schedule_kind", ScheduleKind.NOW),
        "send_at": _parse_local(post.get("send_at", ""), schedule_zone, "send_at"),
        "rrule": post.get("rrule", "").strip(),
        "schedule_timezone": schedule_zone,
        "local_date": _parse_date(post.get("local_date", ""), "local_date"),
        "local_time": _parse_time(post.get("local_time", ""), "local_time"),
        "fallback_timezone": post.get("fallback_timezone", "").strip() or "UTC",
        "late_policy": post.get("late_policy", LatePolicy.NEXT_DAY),
        "attribution_hours": _int(post.get("attribution_hours", ""), "attribution_hours", default=72),
        "goal_event": post.get("goal_event", "").strip(),
        "goal_window_hours": _int(post.get("goal_window_hours", ""), "goal_window_hours", default=72),
    }


def _form_values(campaign: Campaign | None, default_zone: str) -> dict[str, Any]:
    """What the editor's inputs show for ``campaign`` (or a new one)."""
    if campaign is None:
        return {
            "name": "",
            "description": "",
            "purpose": SendPurpose.MARKETING,
            "segment": None,
            "channels": [None] * CHANNEL_SLOTS,
            "prefer_customer_channel": True,
            "content": {},
            "media_urls": "",
            "variants": _variant_rows([]),
            "holdout_percent": 0,
            "schedule_kind": ScheduleKind.NOW,
            "send_at": "",
            "rrule": "",
            "schedule_timezone": default_zone,
            "local_date": "",
            "local_time": "",
            "fallback_timezone": default_zone,
            "late_policy": LatePolicy.NEXT_DAY,
            "attribution_hours": 72,
            "goal_event": "",
            "goal_window_hours": 72,
        }
    content = {
        f"{kind}_{key}": str((campaign.content.get(kind) or {}).get(key) or "")
        for _, kind, key in CONTENT_INPUTS
    }
    zone = zone_get(campaign.schedule_timezone)
    return {
        "name": campaign.name,
        "description": campaign.description,
        "purpose": campaign.purpose,
        "segment": campaign.segment_id,
        "channels": (list(campaign.channel_ids) + [None] * CHANNEL_SLOTS)[:CHANNEL_SLOTS],
        "prefer_customer_channel": campaign.prefer_customer_channel,
        "content": content,
        "media_urls": "\n".join((campaign.content.get("sms") or {}).get("media_urls") or []),
        "variants": _variant_rows(campaign.variants or []),
        "holdout_percent": campaign.holdout_percent,
        "schedule_kind": campaign.schedule_kind,
        "send_at": campaign.send_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if campaign.send_at else "",
        "rrule": campaign.rrule,
        "schedule_timezone": campaign.schedule_timezone,
        "local_date": campaign.local_date.isoformat() if campaign.local_date else "",
        "local_time": campaign.local_time.strftime("%H:%M") if campaign.local_time else "",
        "fallback_timezone": campaign.fallback_timezone,
        "late_policy": campaign.late_policy,
        "attribution_hours": campaign.attribution_hours,
        "goal_event": campaign.goal_event,
        "goal_window_hours": campaign.goal_window_hours,
    }


def _variant_rows(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The variant rows of the editor: the campaign's, then empty ones (two, at most 8 rows in all)."""
    rows = []
    for v in variants:
        overrides = v.get("content") or {}
        rows.append(
            {
                "key": v.get("key", ""),
                "weight": v.get("weight", 1),
                "sms_body": (overrides.get("sms") or {}).get("body", ""),
                "email_subject": (overrides.get("email") or {}).get("subject", ""),
            }
        )
    while len(rows) < min(MAX_VARIANTS, max(2, len(variants) + 1)):
        rows.append({"key": "", "weight": "", "sms_body": "", "email_subject": ""})
    return [{"n": n, **row} for n, row in enumerate(rows)]


def _values_from_post(post: QueryDict) -> dict[str, Any]:
    """The posted form shown back unchanged after a refusal (so nothing typed is lost)."""
    values: dict[str, Any] = {key: post.get(key, "") for key in post}
    values["channels"] = [_int_or_none(post.get(f"channel_{s}", "")) for s in range(CHANNEL_SLOTS)]
    values["segment"] = _int_or_none(post.get("segment", ""))
    values["prefer_customer_channel"] = post.get("prefer_customer_channel") == "on"
    values["content"] = {name: post.get(name, "") for name, _, _ in CONTENT_INPUTS}
    values["media_urls"] = post.get("sms_media_urls", "")
    values["variants"] = [
        {
            "n": n,
            "key": post.get(f"variant_{n}_key", ""),
            "weight": post.get(f"variant_{n}_weight", ""),
            "sms_body": post.get(f"variant_{n}_sms_body", ""),
            "email_subject": post.get(f"variant_{n}_email_subject", ""),
        }
        for n in range(MAX_VARIANTS)
        if f"variant_{n}_key" in post
    ]
    return values


def _int_or_none(raw: str) -> int | None:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _editor_context(
    request: ConsoleRequest, campaign: Campaign | None, values: dict[str, Any]
) -> dict[str, Any]:
    channels = list(
        Channel.objects.filter(workspace=request.workspace, is_active=True).order_by("kind", "name")
    )
    segments = list(Segment.objects.filter(workspace=request.workspace).order_by("name").only("id", "name"))
    editable = campaign is None or campaign.state == CampaignState.DRAFT
    lint: dict[str, list[str]] = values.get("lint") or {}
    sections = []
    for kind, label in CONTENT_LABELS:
        fields = []
        for name, field_kind, key in CONTENT_INPUTS:
            if field_kind != kind:
                continue
            fields.append(
                {
                    "name": name,
                    "key": key,
                    "label": FIELD_LABELS.get(key, key),
                    "value": (values.get("content") or {}).get(name, ""),
                    "long": key not in ("subject",),
                    "problems": lint.get(f"{kind}.{key}", []),
                }
            )
        sections.append({"kind": kind, "label": label, "fields": fields})
    shown = {f"{kind}.{key}" for _, kind, key in CONTENT_INPUTS}
    other_problems = [(key, found) for key, found in sorted(lint.items()) if key not in shown]
    content_editable = editable or (campaign is not None and campaign.state == CampaignState.PAUSED)
    return {
        "campaign": campaign,
        "values": values,
        "content_sections": sections,
        "other_problems": other_problems,
        "channels": channels,
        "channel_slots": list(enumerate(values.get("channels") or [None] * CHANNEL_SLOTS)),
        "segments": segments,
        "purposes": [(SendPurpose.MARKETING, "Marketing"), (SendPurpose.TRANSACTIONAL, "Transactional")],
        "schedule_kinds": ScheduleKind.choices,
        "late_policies": LatePolicy.choices,
        "timezones": sorted(known_timezones()),
        "editable": editable and _can_edit(request),
        "content_editable": content_editable and _can_edit(request),
        "sms_opt_out_hint": SMS_OPT_OUT_HINT,
        "max_variants": MAX_VARIANTS,
    }


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
@editors_only
def campaign_new(request: ConsoleRequest) -> HttpResponse:
    zone = str(timezone.get_current_timezone())
    if request.method != "POST":
        context = _editor_context(request, None, _form_values(None, zone))
        segment = _int_or_none(request.GET.get("segment", ""))
        if segment is not None:
            context["values"]["segment"] = segment
        return console_render(request, "console/campaign_new.html", context)
    try:
        campaign = campaign_create(
            workspace=request.workspace, actor=_actor(request), **posted_fields(request.POST)
        )
    except DomainError as exc:
        context = _editor_context(request, None, _values_from_post(request.POST))
        context["error"] = str(exc)
        return console_render(request, "console/campaign_new.html", context, status=400)
    messages.success(request, f"Campaign “{campaign.name}” saved as a draft.")
    return redirect("console:campaign", campaign_id=campaign.pk)


@require_http_methods(["GET", "HEAD", "POST"])
@console_view
def campaign_detail(request: ConsoleRequest, campaign_id: int) -> HttpResponse:
    """The campaign: state and actions, audience, progress and stats, the editor (a draft's every field; a
    paused campaign's content), lint problems, preview and test send."""
    campaign = _campaign_or_404(request, campaign_id)
    zone = str(timezone.get_current_timezone())
    if request.method == "POST":
        if not _can_edit(request):
            reason = "Campaigns are written and launched by the workspace's marketers and admins."
            return console_render(request, "403.html", {"reason": reason}, status=403)
        try:
            fields = posted_fields(request.POST, previous=campaign)
            if campaign.state == CampaignState.PAUSED:
                fields = {k: fields[k] for k in ("name", "description", "content", "variants")}
            campaign_update(campaign=campaign, actor=_actor(request), **fields)
        except DomainError as exc:
            values = _values_from_post(request.POST)
            return _detail(request, campaign, values, error=_problem_text(exc), status=400)
        messages.success(request, "Saved.")
        return redirect("console:campaign", campaign_id=campaign.pk)
    return _detail(request, campaign, _form_values(campaign, zone))


def _stats(campaign: Campaign) -> dict[str, Any]:
    """``campaign_stats`` plus ``finished`` (rows in a terminal state) for the progress bar."""
    stats = campaign_stats(campaign=campaign)
    total = stats["total"]
    stats["finished"] = total["targeted"] - total["pending"] - total["held"] - total["sending"]
    return stats


def _problem_text(exc: DomainError) -> str:
    problems = (getattr(exc, "extra", None) or {}).get("problems")
    if isinstance(exc, ContentInvalid) and problems:
        return "The content has problems: " + "; ".join(
            f"{key}: {', '.join(found)}" for key, found in sorted(problems.items())
        )
    return str(exc)


def _detail(
    request: ConsoleRequest, campaign: Campaign, values: dict[str, Any], *, error: str = "", status: int = 200
) -> HttpResponse:
    lint = campaign_lint(campaign=campaign) if campaign.state == CampaignState.DRAFT else {}
    context = _editor_context(request, campaign, {**values, "lint": lint})
    context.update(
        {
            "error": error,
            "lint": lint,
            "audience": campaign_audience(campaign=campaign),
            "preview_customers": campaign_preview_customers(campaign=campaign),
            "stats": _stats(campaign),
            "live": campaign.state in ACTIVE_STATES,
            "can_approve": (
                request.membership.role == Role.ADMIN
                and campaign.state == CampaignState.DRAFT
                and campaign.created_by_id != request.membership.user_id
            ),
        }
    )
    return console_render(request, "console/campaign_detail.html", context, status=status)


@require_http_methods(["GET", "HEAD"])
@console_view
def campaign_audience_fragment(request: ConsoleRequest) -> HttpResponse:
    """The editor's audience box for the chosen segment and purpose: count and reach per channel."""
    segment_id = _int_or_none(request.GET.get("segment", ""))
    segment = (
        Segment.objects.filter(workspace=request.workspace, pk=segment_id).first()
        if segment_id is not None
        else None
    )
    audience = None
    if segment is not None:
        probe = Campaign(workspace=request.workspace, segment=segment)
        purpose = request.GET.get("purpose", SendPurpose.MARKETING)
        if purpose not in SendPurpose.values:
            purpose = SendPurpose.MARKETING
        audience = campaign_audience(campaign=probe, purpose=purpose)
    return render(request, "console/_campaign_audience.html", {"audience": audience})


# ---------------------------------------------------------------- actions


ACTIONS: dict[str, Callable[..., Campaign]] = {
    "launch": campaign_launch,
    "approve": campaign_approve,
    "pause": campaign_pause,
    "resume": campaign_resume,
    "cancel": campaign_cancel,
}
DONE = {
    "launch": "Launched.",
    "approve": "Approved.",
    "pause": "Paused: no new message goes out until you resume.",
    "resume": "Resumed: only recipients not sent yet will get it.",
    "cancel": "Cancelled: recipients not sent yet are skipped.",
}


@require_POST
@console_view
@editors_only
def campaign_action(request: ConsoleRequest, campaign_id: int, verb: str) -> HttpResponse:
    """Launch, approve, pause, resume, cancel or delete (a draft); the service decides whether it may."""
    campaign = _campaign_or_404(request, campaign_id)
    if verb == "delete":
        try:
            campaign_delete(campaign=campaign)
        except DomainError as exc:
            messages.error(request, str(exc))
            return redirect("console:campaign", campaign_id=campaign.pk)
        messages.success(request, f"Campaign “{campaign.name}” deleted.")
        return redirect("console:campaigns")
    service = ACTIONS.get(verb)
    if service is None:
        raise Http404("No such action")
    kwargs: dict[str, Any] = {"campaign": campaign}
    if verb in ("launch", "approve"):
        kwargs["actor"] = _actor(request)
    try:
        service(**kwargs)
    except DomainError as exc:
        messages.error(request, _problem_text(exc))
    else:
        messages.success(request, DONE[verb])
    return redirect("console:campaign", campaign_id=campaign.pk)


@require_POST
@console_view
def campaign_preview_fragment(request: ConsoleRequest, campaign_id: int) -> HttpResponse:
    """The message as one customer (chosen from the segment, or any customer by id) would get it."""
    campaign = _campaign_or_404(request, campaign_id)
    customer_id = _int_or_none(request.POST.get("customer_id_other", "")) or _int_or_none(
        request.POST.get("customer_id", "")
    )
    customer = (
        Customer.objects.filter(workspace=request.workspace, pk=customer_id).first()
        if customer_id is not None
        else None
    )
    context: dict[str, Any] = {"customer": customer, "campaign": campaign}
    if customer is None:
        context["error"] = "Choose a customer of this workspace."
    else:
        variant = request.POST.get("variant", "").strip() or None
        try:
            preview = campaign_preview(campaign=campaign, customer=customer, variant=variant)
        except DomainError as exc:
            context["error"] = str(exc)
        else:
            for rendered in preview["channels"].values():
                if rendered.get("html"):
                    rendered["html"] = email_html_sanitize(rendered["html"])
            context["preview"] = preview
    return render(request, "console/_campaign_preview.html", context)


@require_POST
@console_view
@editors_only
def campaign_test_send_view(request: ConsoleRequest, campaign_id: int) -> HttpResponse:
    """Send to the addresses typed (one per line or comma-separated) through the real path, marked as a
    test and left out of the stats."""
    campaign = _campaign_or_404(request, campaign_id)
    raw = request.POST.get("addresses", "").replace(",", "\n")
    addresses = [a.strip() for a in raw.splitlines() if a.strip()]
    as_id = _int_or_none(request.POST.get("as_customer_id", ""))
    as_customer = Customer.objects.filter(workspace=request.workspace, pk=as_id).first() if as_id else None
    try:
        sent = campaign_test_send(
            campaign=campaign,
            addresses=addresses,
            as_customer=as_customer,
            variant=request.POST.get("variant", "").strip() or None,
            actor=_actor(request),
        )
    except DomainError as exc:
        messages.error(request, f"Test not sent: {_problem_text(exc)}")
    else:
        messages.success(request, "Test sent to " + ", ".join(i.customer_address for i in sent) + ".")
    return redirect("console:campaign", campaign_id=campaign.pk)


# ---------------------------------------------------------------- progress, recipients, export


@require_http_methods(["GET", "HEAD"])
@console_view
def campaign_progress_fragment(request: ConsoleRequest, campaign_id: int) -> HttpResponse:
    """Live progress and stats (htmx polls it every 2 s while the campaign is active; the page's
    campaigns.js redraws the charts from its JSON)."""
    campaign = _campaign_or_404(request, campaign_id)
    seen = request.GET.get("state", "")
    if seen and seen != campaign.state and request.headers.get("HX-Request"):
        # The state changed since the page drew its header and buttons (running → completed, paused by
        # its error rate…): htmx reloads the whole page rather than leave a stale "Pause" in it.
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    context = {
        "campaign": campaign,
        "stats": _stats(campaign),
        "live": campaign.state in ACTIVE_STATES,
    }
    return render(request, "console/_campaign_progress.html", context)


@require_http_methods(["GET", "HEAD"])
@console_view
def campaign_recipients_view(request: ConsoleRequest, campaign_id: int) -> HttpResponse:
    """The recipient rows with state, variant, channel, hold and skip reasons; filter by state/variant."""
    campaign = _campaign_or_404(request, campaign_id)
    state = request.GET.get("state", "")
    if state not in RecipientState.values:
        state = ""
    variant = request.GET.get("variant", "").strip()[:16]
    rows = campaign_recipients(campaign=campaign, state=state, variant=variant).order_by("pk")
    page = Paginator(rows, RECIPIENTS_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "campaign": campaign,
        "page": page,
        "state": state,
        "variant": variant,
        "states": RecipientState.choices,
    }
    return console_render(request, "console/campaign_recipients.html", context)


@require_http_methods(["GET", "HEAD"])
@console_view
def campaign_export(request: ConsoleRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign_or_404(request, campaign_id)
    response = StreamingHttpResponse(campaign_recipients_csv(campaign=campaign), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-recipients.csv"'
    return response  # type: ignore[return-value]  # streamed: Django's handlers take either
