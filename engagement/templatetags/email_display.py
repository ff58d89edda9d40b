"""``{% email_body interaction %}``: an email on the console timeline, sanitised, quotes folded away."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils.safestring import mark_safe

from engagement.models import Interaction
from engagement.services.email_threading import email_html_sanitize, email_html_split, email_text_split

register = template.Library()


@register.inclusion_tag("console/_email_body.html")
def email_body(interaction: Interaction) -> dict[str, Any]:
    """Context for one email: subject, the new part and the quoted history (HTML through nh3 only; the
    stored body and HTML are never changed), and its attachments (queried only when it has some)."""
    email: dict[str, Any] = interaction.metadata.get("email") or {}
    html = str(email.get("html") or "")
    attachments = list(interaction.attachments.all()) if email.get("attachment_count") else []
    cid_urls = {
        a.content_id: reverse("attachment-download", args=[a.pk]) for a in attachments if a.content_id
    }
    context: dict[str, Any] = {
        "subject": email.get("subject", ""),
        "auto_reply": bool(email.get("auto_reply")),
        "automated_reason": str(email.get("automated_reason") or ""),
        # What was malformed in the mail as it came (kept as well as it could be): the agent sees it.
        "problems": [str(p) for p in email.get("problems") or []],
        # Left out of the list only when the HTML shows it (a bare substring match hid, say, cid "photo"
        # from a mail whose text merely said "photo", and the file was then nowhere to be seen).
        "attachments": [a for a in attachments if not (a.inline and f"cid:{a.content_id}" in html)],
        "visible_html": "",
        "quoted_html": "",
        "visible_text": "",
        "quoted_text": "",
    }
    if html.strip():
        visible, quoted = email_html_split(html)
        # nh3 output is safe to mark: it is an allow-list sanitiser (scripts, handlers, styles removed).
        context["visible_html"] = mark_safe(email_html_sanitize(visible, cid_urls=cid_urls))  # noqa: S308
        context["quoted_html"] = mark_safe(email_html_sanitize(quoted, cid_urls=cid_urls)) if quoted else ""  # noqa: S308
    else:
        context["visible_text"], context["quoted_text"] = email_text_split(interaction.body)
    return context
