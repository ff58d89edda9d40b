"""Team tools: assignment (manual, self-assign on reply, round-robin among online team members within a
capacity), teams, labels, snooze, private notes with @mentions, canned responses and bulk actions.

**Threads.** The console shows one row and one thread per customer (``engagement/services/inbox.py``),
while a ``Conversation`` stays on one channel. The work of a thread is the customer's *unresolved*
conversations (open, pending, snoozed): a console action on the thread — assign, label, snooze, resolve —
applies to every one of them (:func:`thread_conversations`); the API acts on one conversation. A
conversation a customer opens on another channel while their thread is assigned joins the thread's
assignee and team (:func:`conversation_auto_assign`), so the row never splits.

Every write owns its transaction and publishes its domain event on commit (``engagement.events``):
``conversation.assigned``, ``conversation.updated`` (status; ``conversation.resolved`` for webhooks) and
``note.created`` (the mentioned members' consoles are told live).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from customers.models import Customer
from engagement import events
from engagement.errors import Conflict, NotFound, ValidationFailed
from engagement.models import CannedResponse, Conversation, Label, Membership, Note, Team, Workspace
from engagement.models.conversations import ConversationStatus
from engagement.realtime import members_online

UNRESOLVED = (ConversationStatus.OPEN, ConversationStatus.PENDING, ConversationStatus.SNOOZED)
# Statuses that count towards an agent's load (a snoozed thread waits on nobody).
ACTIVE = (ConversationStatus.OPEN, ConversationStatus.PENDING)

MAX_SNOOZE = timedelta(days=366)

# Sentinel: "leave the team as it is" (None means "no team").
KEEP: Any = object()


class AssignmentInvalid(ValidationFailed):
    code = "assignment_invalid"


class TeamInvalid(ValidationFailed):
    code = "team_invalid"


class LabelInvalid(ValidationFailed):
    code = "label_invalid"


class NoteInvalid(ValidationFailed):
    code = "note_invalid"


class CannedResponseInvalid(ValidationFailed):
    code = "canned_response_invalid"


class SnoozeInvalid(ValidationFailed):
    code = "snooze_invalid"


# ---------------------------------------------------------------- threads


def thread_conversations(*, workspace: Workspace, customer_id: int) -> list[Conversation]:
    """The conversations a thread action applies to: the customer's unresolved ones, newest first, else
    (all resolved) the newest one, so "reopen" has something to act on. The actions lock the rows."""
    qs = Conversation.objects.filter(workspace=workspace, customer_id=customer_id)
    found = list(qs.filter(status__in=UNRESOLVED).order_by("-last_activity_at", "-id"))
    if found:
        return found
    newest = qs.order_by("-last_activity_at", "-id").first()
    return [newest] if newest is not None else []


def _member_user_ids(*, workspace: Workspace, user_ids: Iterable[int]) -> set[int]:
    return set(
        Membership.objects.filter(workspace=workspace, user_id__in=list(user_ids)).values_list(
            "user_id", flat=True
        )
    )


def _team(*, workspace: Workspace, team_id: int | None) -> Team | None:
    if team_id is None:
        return None
    team = Team.objects.filter(workspace=workspace, pk=team_id).first()
    if team is None:
        raise TeamInvalid(f"no team {team_id} in this workspace", field="team_id")
    return team


# ---------------------------------------------------------------- assignment


def conversation_assign(
    *,
    workspace: Workspace,
    conversations: list[Conversation],
    assignee_id: int | None,
    team_id: Any = KEEP,
    how: str = "manual",
) -> list[Conversation]:
    """Give ``conversations`` to ``assignee_id`` (any member of the workspace; None: unassigned) and,
    unless ``team_id`` is KEEP, to that team (None: no team). Returns the conversations that changed
    (their rows updated in place); publishes ``conversation.assigned`` for each.

    Raises ``AssignmentInvalid`` (400, field ``assignee_id``) for a user who is not a member, and
    ``TeamInvalid`` (field ``team_id``) for a team of another workspace."""
    if assignee_id is not None and not _member_user_ids(workspace=workspace, user_ids=[assignee_id]):
        raise AssignmentInvalid(f"user {assignee_id} is not a member of this workspace", field="assignee_id")
    team = KEEP if team_id is KEEP else _team(workspace=workspace, team_id=team_id)
    changed: list[Conversation] = []
    with transaction.atomic():
        ids = [c.pk for c in conversations if c.workspace_id == workspace.pk]
        locked = {c.pk: c for c in Conversation.objects.select_for_update().filter(pk__in=ids)}
        published = []
        for conversation in conversations:
            row = locked.get(conversation.pk)
            if row is None:
                continue
            fields: dict[str, Any] = {}
            if row.assignee_id != assignee_id:
                fields["assignee_id"] = assignee_id
            if team is not KEEP and row.team_id != (team.pk if team else None):
                fields["team_id"] = team.pk if team else None
            if not fields:
                continue
            previous = row.assignee_id
            Conversation.objects.filter(pk=row.pk).update(**fields, updated_at=timezone.now())
            for name, value in fields.items():
                setattr(conversation, name, value)
            changed.append(conversation)
            published.append(
                events.DomainEvent(
                    name=events.CONVERSATION_ASSIGNED,
                    workspace_id=workspace.pk,
                    conversation_id=conversation.pk,
                    customer_id=conversation.customer_id,
                    data={
                        "assignee_id": conversation.assignee_id,
                        "team_id": conversation.team_id,
                        "previous_assignee_id": previous,
                        "how": how,
                    },
                )
            )
        events.publish_on_commit(*published)
    return changed


def thread_assign(
    *, workspace: Workspace, customer_id: int, assignee_id: int | None, team_id: Any = KEEP
) -> list[Conversation]:
    """Assign the customer's thread (:func:`thread_conversations`) to a member and/or a team."""
    with transaction.atomic():
        conversations = thread_conversations(workspace=workspace, customer_id=customer_id)
        return conversation_assign(
            workspace=workspace, conversations=conversations, assignee_id=assignee_id, team_id=team_id
        )


def thread_self_assign_on_reply(*, workspace: Workspace, customer_id: int, user_id: int) -> bool:
    """An agent who replies in an unassigned thread takes it (Chatwoot's "assign on reply"). A thread
    that is somebody's stays theirs. Returns whether it was taken."""
    with transaction.atomic():
        conversations = [
            c
            for c in thread_conversations(workspace=workspace, customer_id=customer_id)
            if c.status != ConversationStatus.RESOLVED
        ]
        if not conversations or any(c.assignee_id is not None for c in conversations):
            return False
        return bool(
            conversation_assign(
                workspace=workspace, conversations=conversations, assignee_id=user_id, how="reply"
            )
        )


def member_loads(*, workspace: Workspace, user_ids: Iterable[int]) -> dict[int, int]:
    """How many customers' threads each member holds (open or pending conversations). One query."""
    rows = (
        Conversation.objects.filter(workspace=workspace, assignee_id__in=list(user_ids), status__in=ACTIVE)
        .values("assignee_id")
        .annotate(n=Count("customer_id", distinct=True))
    )
    return {row["assignee_id"]: row["n"] for row in rows}


def round_robin_pick(
    *, candidates: list[int], loads: dict[int, int], capacity: int, last: int | None
) -> int | None:
    """Decide who gets the next conversation: the first candidate (by id) after ``last`` that is under
    ``capacity`` (0: no limit), wrapping around; None when everybody is full. Pure."""
    ordered = sorted(candidates)
    if not ordered:
        return None
    start = 0
    if last is not None:
        start = next((i for i, uid in enumerate(ordered) if uid > last), 0)
    for uid in ordered[start:] + ordered[:start]:
        if capacity == 0 or loads.get(uid, 0) < capacity:
            return uid
    return None


def conversation_auto_assign(*, conversation_id: int) -> int | None:
    """Assign a new, unassigned conversation (the ``conversation.opened`` listener's task):

    1. the customer's thread already has an assignee (another unresolved conversation): that member and
       team, so the customer's row stays one person's work;
    2. else the first team with ``auto_assign`` that handles the conversation's channel: round-robin
       (:func:`round_robin_pick`) among its members who are online (a console websocket heartbeat within
       ``engagement.realtime.PRESENCE_TTL_SECONDS``) and hold fewer than ``capacity`` threads; the team
       row is locked so concurrent assignments take turns. Nobody online or under capacity: the
       conversation is given to the team only, and stays in "unassigned".

    Returns the assignee's user id, or None."""
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("workspace")
            .filter(pk=conversation_id)
            .first()
        )
        if conversation is None or conversation.assignee_id is not None:
            return None
        workspace = conversation.workspace
        sibling = (
            Conversation.objects.filter(
                workspace=workspace, customer_id=conversation.customer_id, status__in=UNRESOLVED
            )
            .exclude(pk=conversation.pk)
            .filter(assignee__isnull=False)
            .order_by("-last_activity_at")
            .values_list("assignee_id", "team_id")
            .first()
        )
        if sibling is not None:
            conversation_assign(
                workspace=workspace,
                conversations=[conversation],
                assignee_id=sibling[0],
                team_id=sibling[1],
                how="thread",
            )
            return sibling[0]
        team = (
            Team.objects.select_for_update(of=("self",))
            .filter(workspace=workspace, auto_assign=True, channels=conversation.channel_id)
            .order_by("pk")
            .first()
        )
        if team is None:
            return None
        members = list(team.members.values_list("pk", flat=True))
        online = members_online(workspace_id=workspace.pk)
        candidates = [uid for uid in members if uid in online]
        picked = round_robin_pick(
            candidates=candidates,
            loads=member_loads(workspace=workspace, user_ids=candidates),
            capacity=team.capacity,
            last=team.last_assigned_user_id,
        )
        conversation_assign(
            workspace=workspace, conversations=[conversation], assignee_id=picked, team_id=team.pk, how="auto"
        )
        if picked is not None:
            Team.objects.filter(pk=team.pk).update(last_assigned_user_id=picked)
        return picked


# ---------------------------------------------------------------- status: resolve, reopen, snooze


def conversations_status_set(
    *,
    workspace: Workspace,
    conversations: list[Conversation],
    status: str,
    snoozed_until: datetime | None = None,
    actor: AbstractBaseUser | None = None,
) -> list[Conversation]:
    """Set the status of ``conversations`` (open, pending, snoozed, resolved); ``snoozed_until`` only
    with "snoozed" (None: until the customer's next message). Resolving records a
    ``ConversationResolution`` per conversation (``actor`` resolved it; the CSAT survey goes out when
    switched on: ``engagement.services.csat``). Returns those that changed; publishes
    ``conversation.updated`` with the status for each (webhooks: ``conversation.resolved`` /
    ``conversation.reopened``). Raises ``SnoozeInvalid`` for a time in the past, more than a year
    ahead, or without snooze."""
    if status not in ConversationStatus.values:
        raise ValidationFailed(f"unknown status {status!r}", field="status")
    now = timezone.now()
    if status != ConversationStatus.SNOOZED and snoozed_until is not None:
        raise SnoozeInvalid("snoozed_until goes with status snoozed", field="snoozed_until")
    if snoozed_until is not None and snoozed_until <= now:
        raise SnoozeInvalid("snoozed_until must be in the future", field="snoozed_until")
    if snoozed_until is not None and snoozed_until > now + MAX_SNOOZE:
        raise SnoozeInvalid("snooze for at most a year", field="snoozed_until")
    changed: list[Conversation] = []
    with transaction.atomic():
        ids = [c.pk for c in conversations if c.workspace_id == workspace.pk]
        locked = {c.pk: c for c in Conversation.objects.select_for_update().filter(pk__in=ids)}
        published = []
        for conversation in conversations:
            row = locked.get(conversation.pk)
            if row is None or (row.status == status and row.snoozed_until == snoozed_until):
                continue
            Conversation.objects.filter(pk=row.pk).update(
                status=status, snoozed_until=snoozed_until, updated_at=timezone.now()
            )
            conversation.status, conversation.snoozed_until = status, snoozed_until
            changed.append(conversation)
            if status == ConversationStatus.RESOLVED:
                from .csat import conversation_resolution_record

                conversation_resolution_record(workspace=workspace, conversation=row, resolved_by=actor)
            data: dict[str, Any] = {"status": status}
            if status == ConversationStatus.SNOOZED:
                data["snoozed_until"] = snoozed_until.isoformat() if snoozed_until else None
            published.append(
                events.DomainEvent(
                    name=events.CONVERSATION_UPDATED,
                    workspace_id=workspace.pk,
                    conversation_id=conversation.pk,
                    customer_id=conversation.customer_id,
                    data=data,
                )
            )
        events.publish_on_commit(*published)
    return changed


def thread_status_set(
    *,
    workspace: Workspace,
    customer_id: int,
    status: str,
    snoozed_until: datetime | None = None,
    actor: AbstractBaseUser | None = None,
) -> list[Conversation]:
    """Resolve, reopen or snooze the customer's thread (:func:`thread_conversations`)."""
    with transaction.atomic():
        conversations = thread_conversations(workspace=workspace, customer_id=customer_id)
        if status == ConversationStatus.OPEN:
            # Reopen the newest only: the others were resolved on their own.
            conversations = conversations[:1]
        return conversations_status_set(
            workspace=workspace,
            conversations=conversations,
            status=status,
            snoozed_until=snoozed_until,
            actor=actor,
        )


def conversations_wake_due(*, now: datetime | None = None, workspace: Workspace | None = None) -> int:
    """Snoozed conversations whose ``snoozed_until`` has passed are open again; returns how many.
    Run by beat (``engagement.tasks.wake_snoozed``, every minute) and lazily before the inbox and the
    API list the workspace's conversations, so a view is right even between two beats. A conversation
    snoozed "until the next message" is woken by that message (``conversation_touch(reopen=True)``)."""
    now = now or timezone.now()
    due = Conversation.objects.filter(status=ConversationStatus.SNOOZED, snoozed_until__lte=now)
    if workspace is not None:
        due = due.filter(workspace=workspace)
    if not due.exists():  # the usual case: one indexed query (conv_snoozed_idx), no transaction
        return 0
    with transaction.atomic():
        rows = list(due.select_for_update(skip_locked=True).values_list("pk", "workspace_id", "customer_id"))
        if not rows:
            return 0
        Conversation.objects.filter(pk__in=[r[0] for r in rows]).update(
            status=ConversationStatus.OPEN, snoozed_until=None, updated_at=now
        )
        events.publish_on_commit(
            *(
                events.DomainEvent(
                    name=events.CONVERSATION_UPDATED,
                    workspace_id=ws,
                    conversation_id=pk,
                    customer_id=cid,
                    data={"status": ConversationStatus.OPEN.value, "woken": True},
                )
                for pk, ws, cid in rows
            )
        )
    return len(rows)


# ---------------------------------------------------------------- labels


def _label_names(names: Iterable[str]) -> list[str]:
    cleaned = []
    for raw in names:
        name = " ".join(str(raw).split()).lower()
        if not name or len(name) > 50:
            raise LabelInvalid(f"a label is 1 to 50 characters: {raw!r}", field="labels")
        cleaned.append(name)
    return sorted(set(cleaned))


def labels_ensure(*, workspace: Workspace, names: Iterable[str]) -> list[Label]:
    """The workspace's labels of these names (trimmed, lower case), created when missing."""
    wanted = _label_names(names)
    existing = {label.name: label for label in Label.objects.filter(workspace=workspace, name__in=wanted)}
    for name in wanted:
        if name not in existing:
            existing[name], _ = Label.objects.get_or_create(workspace=workspace, name=name)
    return [existing[name] for name in wanted]


def conversation_labels_change(
    *,
    workspace: Workspace,
    conversations: list[Conversation],
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
) -> None:
    """Add labels (created on first use) to and remove labels from ``conversations``; publishes
    ``conversation.updated`` (``data.labels``) so consoles refresh."""
    with transaction.atomic():
        ids = [c.pk for c in conversations if c.workspace_id == workspace.pk]
        through = Conversation.labels.through
        added = labels_ensure(workspace=workspace, names=add)
        if added:
            through.objects.bulk_create(
                [through(conversation_id=cid, label_id=label.pk) for cid in ids for label in added],
                ignore_conflicts=True,
            )
        removed = _label_names(remove)
        if removed:
            through.objects.filter(
                conversation_id__in=ids, label__workspace=workspace, label__name__in=removed
            ).delete()
        Conversation.objects.filter(pk__in=ids).update(updated_at=timezone.now())
        events.publish_on_commit(
            *(
                events.DomainEvent(
                    name=events.CONVERSATION_UPDATED,
                    workspace_id=workspace.pk,
                    conversation_id=c.pk,
                    customer_id=c.customer_id,
                    data={"labels": True},
                )
                for c in conversations
                if c.pk in ids
            )
        )


def label_delete(*, workspace: Workspace, label_id: int) -> None:
    deleted, _ = Label.objects.filter(workspace=workspace, pk=label_id).delete()
    if not deleted:
        raise NotFound(f"no label {label_id}")


# ---------------------------------------------------------------- teams


@dataclass(frozen=True)
class TeamInput:
    name: str
    member_ids: list[int]
    channel_ids: list[int]
    auto_assign: bool = False
    capacity: int = 0


def team_save(*, workspace: Workspace, data: TeamInput, team: Team | None = None) -> Team:
    """Create (``team`` None) or update a team. Members must belong to the workspace, channels too;
    ``capacity`` 0..1000 (0: no limit). Raises ``TeamInvalid`` naming the field, ``Conflict`` for a
    name the workspace already has."""
    from engagement.models import Channel

    name = data.name.strip()
    if not name or len(name) > 100:
        raise TeamInvalid("a team's name is 1 to 100 characters", field="name")
    if not 0 <= data.capacity <= 1000:
        raise TeamInvalid("capacity is 0 (no limit) to 1000", field="capacity")
    members = _member_user_ids(workspace=workspace, user_ids=data.member_ids)
    if members != set(data.member_ids):
        missing = sorted(set(data.member_ids) - members)
        raise TeamInvalid(f"not members of this workspace: {missing}", field="member_ids")
    channels = set(
        Channel.objects.filter(workspace=workspace, pk__in=data.channel_ids).values_list("pk", flat=True)
    )
    if channels != set(data.channel_ids):
        raise TeamInvalid(
            f"unknown channels: {sorted(set(data.channel_ids) - channels)}", field="channel_ids"
        )
    try:
        with transaction.atomic():
            if team is None:
                team = Team(workspace=workspace)
            team.name, team.auto_assign, team.capacity = name, data.auto_assign, data.capacity
            team.save()
            team.members.set(sorted(members))
            team.channels.set(sorted(channels))
    except IntegrityError as exc:
        raise Conflict(f"a team named {name!r} exists", field="name") from exc
    return team


def team_delete(*, workspace: Workspace, team_id: int) -> None:
    deleted, _ = Team.objects.filter(workspace=workspace, pk=team_id).delete()
    if not deleted:
        raise NotFound(f"no team {team_id}")


def teams_of_member(*, workspace: Workspace, user_id: int) -> list[int]:
    return list(Team.objects.filter(workspace=workspace, members=user_id).values_list("pk", flat=True))


# ---------------------------------------------------------------- private notes and @mentions

MENTION_RE = re.compile(r"(?<![\w.@])@([\w.+-]{1,150})")


def note_mentions_parse(*, workspace: Workspace, body: str) -> list[int]:
    """Ids of the workspace members named ``@<username>`` in ``body`` (case-insensitive); other
    ``@words`` (an email address, an unknown name) are plain text. One query."""
    names = {m.group(1).rstrip(".").lower() for m in MENTION_RE.finditer(body)}
    if not names:
        return []
    user_model = get_user_model()
    q = Q()
    for name in names:
        q |= Q(**{f"{user_model.USERNAME_FIELD}__iexact": name})
    return sorted(
        Membership.objects.filter(workspace=workspace)
        .filter(user__in=user_model.objects.filter(q))
        .values_list("user_id", flat=True)
    )


def note_create(
    *,
    workspace: Workspace,
    customer: Customer,
    body: str,
    author_id: int | None,
    conversation: Conversation | None = None,
) -> Note:
    """A private note on the customer's thread (never sent to the customer). ``@username`` mentions of
    workspace members are recorded; ``note.created`` carries their ids so their consoles show it live
    and the "mentions" view lists the thread. ``conversation`` defaults to the thread's newest one.
    Raises ``NoteInvalid`` for an empty body or one over 5,000 characters."""
    text = body.strip()
    if not text or len(text) > 5000:
        raise NoteInvalid("a note is 1 to 5,000 characters", field="body")
    if customer.workspace_id != workspace.pk:
        raise NotFound("no such customer")
    with transaction.atomic():
        if conversation is None:
            found = thread_conversations(workspace=workspace, customer_id=customer.pk)
            conversation = found[0] if found else None
        mentioned = note_mentions_parse(workspace=workspace, body=text)
        note = Note.objects.create(
            workspace=workspace,
            customer=customer,
            conversation=conversation,
            author_id=author_id,
            body=text,
            created_at=timezone.now(),
        )
        if mentioned:
            note.mentions.set(mentioned)
        events.publish_on_commit(
            events.DomainEvent(
                name=events.NOTE_CREATED,
                workspace_id=workspace.pk,
                conversation_id=conversation.pk if conversation else None,
                customer_id=customer.pk,
                data={"note_id": note.pk, "author_id": author_id, "mentioned_user_ids": mentioned},
            )
        )
    return note


def notes_for_customer(*, workspace: Workspace, customer: Customer) -> QuerySet[Note]:
    return (
        Note.objects.filter(workspace=workspace, customer=customer)
        .select_related("author")
        .prefetch_related("mentions")
        .order_by("created_at", "pk")
    )


# ---------------------------------------------------------------- canned responses

_SANDBOX = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
CANNED_VARIABLES = (
    "customer.first_name",
    "customer.last_name",
    "customer.name",
    "agent.first_name",
    "agent.name",
    "workspace.name",
)


def canned_response_variables(
    *, customer: Customer | None, agent: Any, workspace: Workspace
) -> dict[str, Any]:
    name = (customer.display_name if customer else "") or ""
    first = (getattr(customer, "first_name", "") or name.split(" ")[0]) if customer else ""
    last = (getattr(customer, "last_name", "") or " ".join(name.split(" ")[1:])) if customer else ""
    agent_name = (agent.get_full_name() or agent.get_username()) if agent is not None else ""
    return {
        "customer": {"first_name": first or "there", "last_name": last, "name": name or "there"},
        "agent": {"first_name": getattr(agent, "first_name", "") or agent_name, "name": agent_name},
        "workspace": {"name": workspace.name},
    }


def canned_response_render(*, body: str, variables: dict[str, Any]) -> str:
    """``body`` with its ``{{ … }}`` variables filled in (Jinja2's sandbox, strict: an unknown variable
    raises ``CannedResponseInvalid``). Variables: :data:`CANNED_VARIABLES`."""
    try:
        return _SANDBOX.from_string(body).render(variables)
    except TemplateError as exc:
        raise CannedResponseInvalid(f"template error: {exc}", field="body") from exc


def canned_response_save(
    *, workspace: Workspace, shortcut: str, title: str, body: str, canned: CannedResponse | None = None
) -> CannedResponse:
    """Create or update a canned response. ``shortcut``: letters, digits, ``-`` and ``_`` (1-40);
    ``body`` is checked by rendering it with sample values. ``Conflict`` for a shortcut in use."""
    shortcut = shortcut.strip().lstrip("/").lower()
    if not re.fullmatch(r"[a-z0-9_-]{1,40}", shortcut):
        raise CannedResponseInvalid("a shortcut is 1-40 letters, digits, - or _", field="shortcut")
    if not title.strip() or len(title) > 100:
        raise CannedResponseInvalid("a title is 1 to 100 characters", field="title")
    if not body.strip() or len(body) > 5000:
        raise CannedResponseInvalid("a body is 1 to 5,000 characters", field="body")
    canned_response_render(
        body=body, variables=canned_response_variables(customer=None, agent=None, workspace=workspace)
    )
    try:
        with transaction.atomic():
            if canned is None:
                canned = CannedResponse(workspace=workspace)
            canned.shortcut, canned.title, canned.body = shortcut, title.strip(), body
            canned.save()
    except IntegrityError as exc:
        raise Conflict(f"the shortcut /{shortcut} is taken", field="shortcut") from exc
    return canned


def canned_responses_rendered(
    *, workspace: Workspace, customer: Customer | None, agent: Any
) -> list[dict[str, str]]:
    """Every canned response of the workspace filled in for ``customer`` and ``agent``, for the reply
    box's ``/`` menu: ``[{"shortcut", "title", "text"}]``. A template that no longer renders is left out."""
    variables = canned_response_variables(customer=customer, agent=agent, workspace=workspace)
    out = []
    for canned in CannedResponse.objects.filter(workspace=workspace).order_by("shortcut"):
        try:
            text = canned_response_render(body=canned.body, variables=variables)
        except CannedResponseInvalid:
            continue
        out.append({"shortcut": canned.shortcut, "title": canned.title, "text": text})
    return out


# ---------------------------------------------------------------- bulk actions on inbox rows

BULK_ACTIONS = ("assign", "label", "resolve", "snooze", "reopen")


def threads_bulk_apply(
    *,
    workspace: Workspace,
    customer_ids: list[int],
    action: str,
    assignee_id: int | None = None,
    label: str = "",
    snoozed_until: datetime | None = None,
    actor: AbstractBaseUser | None = None,
) -> int:
    """Apply one action to the threads of the selected inbox rows, in one transaction (``actor``: who
    acts, recorded on resolutions): ``assign``
    (``assignee_id``, None: unassign), ``label`` (add ``label``), ``resolve``, ``reopen``, ``snooze``
    (``snoozed_until``, None: until the customer's next message). Returns how many conversations
    changed (for ``label``: were labelled). Raises ``ValidationFailed`` for an unknown action."""
    if action not in BULK_ACTIONS:
        raise ValidationFailed(f"unknown action {action!r}", field="action")
    if not customer_ids:
        raise ValidationFailed("select at least one row", field="customer_ids")
    if len(customer_ids) > 500:
        raise ValidationFailed("at most 500 rows at a time", field="customer_ids")
    with transaction.atomic():
        conversations: list[Conversation] = []
        for cid in sorted(set(customer_ids)):
            found = thread_conversations(workspace=workspace, customer_id=cid)
            if action == "reopen":
                found = found[:1]
            conversations.extend(found)
        if action == "assign":
            return len(
                conversation_assign(workspace=workspace, conversations=conversations, assignee_id=assignee_id)
            )
        if action == "label":
            conversation_labels_change(workspace=workspace, conversations=conversations, add=[label])
            return len(conversations)
        status = {
            "resolve": ConversationStatus.RESOLVED,
            "reopen": ConversationStatus.OPEN,
            "snooze": ConversationStatus.SNOOZED,
        }[action]
        return len(
            conversations_status_set(
                workspace=workspace,
                conversations=conversations,
                status=status,
                snoozed_until=snoozed_until,
                actor=actor,
            )
        )
