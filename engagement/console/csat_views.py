"""The public survey page a CSAT email links to (``/csat/<signed token>/``): no login. GET shows the
question with the score from the link preselected (mail scanners follow links: a GET records nothing);
POST records the answer through ``engagement.services.csat.csat_response_record``."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from engagement.errors import DomainError
from engagement.models import CsatSource
from engagement.sanitize import digits_parse
from engagement.services.csat import (
    DEFAULT_QUESTION,
    csat_resolution_from_token,
    csat_response_record,
    csat_settings_for,
)


@require_http_methods(["GET", "HEAD", "POST"])
def csat_survey(request: HttpRequest, token: str) -> HttpResponse:
    try:
        resolution = csat_resolution_from_token(token)
    except DomainError as exc:
        return render(request, "csat/survey.html", {"error": str(exc)}, status=404)
    question = csat_settings_for(workspace=resolution.workspace).question or DEFAULT_QUESTION
    chosen = digits_parse(
        request.POST.get("score", "") if request.method == "POST" else request.GET.get("score", "")
    )
    context = {
        "question": question,
        "chosen": chosen,
        "scores": range(1, 6),
        "workspace": resolution.workspace,
    }
    if request.method == "POST":
        try:
            csat_response_record(
                resolution=resolution,
                score=chosen or 0,
                source=CsatSource.PAGE,
                comment=request.POST.get("comment", "").strip(),
            )
        except DomainError as exc:
            return render(request, "csat/survey.html", {**context, "error": str(exc)}, status=400)
        return render(request, "csat/survey.html", {**context, "thanks": True})
    return render(request, "csat/survey.html", context)
