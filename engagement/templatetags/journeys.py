"""Journey editor labels: ``{{ step.type|step_label }}`` shows "Wait for a reply, event or segment" for
``wait_for`` (engagement/journeys/definition.py STEP_LABELS)."""

from __future__ import annotations

from django import template

from engagement.journeys.definition import STEP_LABELS

register = template.Library()


@register.filter
def step_label(step_type: str) -> str:
    return STEP_LABELS.get(step_type, step_type)
