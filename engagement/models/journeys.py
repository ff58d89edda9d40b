"""Journeys: multi-step automation that reacts to what customers do on any channel.

A :class:`Journey` is edited as a draft definition; publishing it freezes the definition into a numbered
:class:`JourneyVersion`. A customer who meets the trigger gets an :class:`Enrollment` on the live version
and keeps that version until the enrollment ends. Each step an enrollment passes is recorded once in
:class:`JourneyStepRun` (UNIQUE(enrollment, step_key)): that row and the step's effect (an outbound
message, a task…) commit in one transaction, so a step runs exactly once whatever the retries.

Timers live on the enrollment (``due_at``, indexed for active rows, claimed by the scheduler with a
lease ``lease_until``); never in Celery ETA tasks. The definition grammar and the engine live in
``engagement/journeys/``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from .tenancy import Workspace


class JourneyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    LIVE = "live", "Live"
    PAUSED = "paused", "Paused"
    ARCHIVED = "archived", "Archived"


class ReentryPolicy(models.TextChoices):
    ONCE_EVER = "once_ever", "Once ever"
    ONCE_AT_A_TIME = "once_at_a_time", "Once at a time"
    EVERY_TIME = "every_time", "Every time"


class Journey(models.Model):
    """``definition`` is the draft (validated JSON: trigger + ordered steps with branches,
    ``engagement/journeys/definition.py``); ``live_version`` what enrollments start on.
    ``trigger_type`` mirrors the live version's trigger type so an event finds its journeys with one
    indexed query. ``goal`` and ``exit_conditions`` end an enrollment as soon as one is met (goal:
    completed, "goal"; exit condition: exited), cancelling its pending steps."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="journeys")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=JourneyStatus.choices, default=JourneyStatus.DRAFT)
    reentry = models.CharField(
        max_length=16, choices=ReentryPolicy.choices, default=ReentryPolicy.ONCE_AT_A_TIME
    )
    purpose = models.CharField(max_length=16, default="transactional")  # customers.consent.SendPurpose
    definition = models.JSONField(default=dict, blank=True)
    goal = models.JSONField(default=dict, blank=True)
    exit_conditions = models.JSONField(default=list, blank=True)
    live_version = models.ForeignKey(
        "JourneyVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger_type = models.CharField(max_length=40, blank=True, default="")
    # Periodic triggers' bookkeeping (engagement/journeys/periodic.py): {"initialized": true} once the
    # segment's members were first recorded, {"last_date": "2026-11-30"} for a date trigger.
    trigger_state = models.JSONField(default=dict, blank=True)
    # A journey made from an automation rule (migration 0012): its sends count toward the rule's hourly
    # cap on automated answers (messaging.automated_answer_refusal).
    automation_rule = models.OneToOneField(
        "engagement.AutomationRule", null=True, blank=True, on_delete=models.SET_NULL, related_name="journey"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["workspace", "status", "trigger_type"], name="journey_trigger_idx")]

    def __str__(self) -> str:
        return self.name


class JourneySegmentMember(models.Model):
    """Who was in a segment-triggered journey's segment at its last evaluation: the next one enrolls
    those who entered (or left) since. UNIQUE(journey, customer)."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["journey", "customer"], name="uniq_journey_segment_member"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}:{self.customer_id}"


class JourneyVersion(models.Model):
    """A published, frozen definition. Editing a live journey and publishing again makes the next
    number; enrollments in flight finish on the version they started on."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    goal = models.JSONField(default=dict, blank=True)
    exit_conditions = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["journey", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="uniq_journey_version_number"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id} v{self.number}"


class EnrollmentState(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    EXITED = "exited", "Exited"
    REMOVED = "removed", "Removed"


class Enrollment(models.Model):
    """One customer's way through one journey version.

    ``current_step`` is the key of the step the enrollment is at ("" before the first / after the last),
    ``waiting_for`` why it waits there ("delay", "reply", "event", "segment", "hold:quiet_hours",
    "hold:pacing"; "" when it is due to run at once), ``wait_detail`` a sentence for people, ``due_at``
    when the scheduler acts (the delay's end, a wait's timeout, a hold's end; NULL: only an event moves
    it). ``exclusive`` is True unless the journey re-enters every time: at most one active exclusive
    enrollment per (journey, customer), by a partial unique index. ``trigger_key`` identifies the event
    that enrolled the customer, so a redelivered event never enrolls twice."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="enrollments")
    version = models.ForeignKey(JourneyVersion, on_delete=models.PROTECT, related_name="enrollments")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=16, choices=EnrollmentState.choices, default=EnrollmentState.ACTIVE)
    exclusive = models.BooleanField(default=True)
    trigger_key = models.CharField(max_length=200, blank=True, default="")
    # What the trigger saw: interaction_id, conversation_id, channel_id, channel_kind, event name/props.
    context = models.JSONField(default=dict, blank=True)
    current_step = models.CharField(max_length=64, blank=True, default="")
    waiting_for = models.CharField(max_length=32, blank=True, default="")
    wait_detail = models.CharField(max_length=300, blank=True, default="")
    due_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=64, blank=True, default="")
    entered_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "customer"],
                condition=Q(state="active", exclusive=True),
                name="uniq_active_enrollment",
            ),
            models.UniqueConstraint(
                fields=["journey", "customer", "trigger_key"],
                condition=~Q(trigger_key=""),
                name="uniq_enrollment_trigger",
            ),
        ]
        indexes = [
            # The scheduler's one query: active rows due now, oldest first.
            models.Index(fields=["due_at"], condition=Q(state="active"), name="enrollment_due_idx"),
            # Events find the customer's active enrollments (waits, goals, exits).
            models.Index(
                fields=["customer", "journey"], condition=Q(state="active"), name="enrollment_active_idx"
            ),
            models.Index(fields=["journey", "state"], name="enrollment_journey_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}:{self.customer_id} {self.state}@{self.current_step}"


class StepOutcome(models.TextChoices):
    DONE = "done", "Done"
    SENT = "sent", "Sent"
    SKIPPED = "skipped", "Skipped"
    MATCHED = "matched", "Matched"
    TIMED_OUT = "timed_out", "Timed out"
    FAILED = "failed", "Failed"


class JourneyStepRun(models.Model):
    """A step an enrollment passed, once: UNIQUE(enrollment, step_key). ``outcome`` and ``reason`` (a
    skip's guard reason, the branch taken) feed the per-step stats."""

    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="step_runs")
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="+")
    step_key = models.CharField(max_length=64)
    step_type = models.CharField(max_length=32)
    outcome = models.CharField(max_length=16, choices=StepOutcome.choices)
    reason = models.CharField(max_length=64, blank=True, default="")
    detail = models.CharField(max_length=300, blank=True, default="")
    interaction = models.ForeignKey(
        "engagement.Interaction", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step_key"], name="uniq_step_run"),
        ]
        indexes = [models.Index(fields=["journey", "step_key", "outcome"], name="step_run_stats_idx")]

    def __str__(self) -> str:
        return f"{self.enrollment_id}:{self.step_key} {self.outcome}"


class AgentTask(models.Model):
    """A to-do for an agent in the console ("Call this customer back"), made by a journey's
    create-task step or by a person. ``done_at`` set when it is done."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="agent_tasks")
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(
        "engagement.Conversation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    title = models.CharField(max_length=200)
    detail = models.TextField(blank=True, default="")
    due_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    enrollment = models.ForeignKey(
        Enrollment, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["done_at", "due_at", "id"]
        indexes = [
            models.Index(fields=["workspace", "done_at", "due_at"], name="agent_task_open_idx"),
            models.Index(fields=["customer", "-created_at"], name="agent_task_customer_idx"),
        ]

    def __str__(self) -> str:
        return self.title
