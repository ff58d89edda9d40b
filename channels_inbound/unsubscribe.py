"""One-click unsubscribe (RFC 8058) for marketing email: ``/unsubscribe/<signed token>/``.

Marketing mail carries ``List-Unsubscribe: <https://…/unsubscribe/<token>/>`` and
``List-Unsubscribe-Post: List-Unsubscribe=One-Click``. The mailbox provider POSTs
``List-Unsubscribe=One-Click`` there: we record the opt-out with no login, no confirmation step and no
redirect, and answer 200. A GET (a person clicking the link, or a link scanner) only shows a page with
a button that makes the same POST, so prefetching never unsubscribes anyone.

The token names the customer the mail went to; if that customer has since been merged into another,
the opt-out lands on the survivor (``customers.lookup.customer_resolve_current``), who now owns the
address and the consent ledger.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from customers.lookup import customer_resolve_current_or_none
from engagement.models import Channel
from engagement.services.email_feedback import email_unsubscribe_record
from engagement.services.email_threading import unsubscribe_token_read

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto">{content}</body></html>"""


def _page(title: str, content: SafeString, status: int = 200) -> HttpResponse:
    return HttpResponse(format_html(PAGE, title=title, content=content), status=status)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    data = unsubscribe_token_read(token)
    customer = channel = None
    if data is not None:
        channel = Channel.objects.select_related("workspace").filter(pk=data["ch"]).first()
        if channel is not None:
            # Within the channel's workspace, following merges to the customer who lives on.
            customer = customer_resolve_current_or_none(
                workspace_id=channel.workspace_id, customer_id=data["c"]
            )
    if data is None or customer is None or channel is None:
        return _page("Link not valid", mark_safe("<p>This unsubscribe link is not valid.</p>"), status=404)
    if request.method == "GET":
        return _page(
            "Unsubscribe",
            format_html(
                '<p>Stop receiving marketing email from {}?</p><form method="post">'
                '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                '<button type="submit">Unsubscribe</button></form>',
                channel.workspace.name,
            ),
        )
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    email_unsubscribe_record(
        customer=customer,
        channel=channel,
        interaction_id=data["i"],
        method="one-click" if one_click else "form",
    )
    return _page(
        "Unsubscribed", mark_safe("<p>You are unsubscribed. You will get no more marketing email.</p>")
    )
