"""The auditor's pages: conversations of everyone (filtered), one conversation's timeline, the
exports and the access trail. Read-only (GET only); every one of them first writes an
access-log entry of who looked at what, with which filter.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.roles import Role
from accounts.selectors import user_has_role
from audit import charts
from audit.charts import histogram
from audit.exports import csv_lines, jsonl_lines
from audit.forms import ConversationFilterForm, UsagePeriodForm
from audit.selectors import access_log_entries
from audit.services import access_log_write
from voice.pricing import price_table
from voice.selectors import (
    ConversationFilter,
    conversation_choices,
    conversation_for_audit,
    conversation_timeline,
    conversations_for_audit,
    conversations_summarize,
    records_for_audit,
    turn_recording,
    usage_groups,
)
from voice.usage import usage_report

PAGE_SIZE = 50


def _is_auditor(request: HttpRequest) -> bool:
    return user_has_role(user=request.user, role=Role.AUDITOR)


def _refused(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/no_access.html", status=403)


def _filter(request: HttpRequest) -> tuple[ConversationFilterForm, ConversationFilter | None]:
    """The filter asked for; None when it is not valid (nothing is shown rather than all)."""
    choices = conversation_choices(auditor=request.user)
    asked = {k: v for k, v in request.GET.items() if k != "page"}
    form = ConversationFilterForm(asked or None, choices=choices)
    if not form.is_bound:
        return form, ConversationFilter()
    return form, form.to_filter() if form.is_valid() else None


@require_GET
def conversation_list(request: HttpRequest) -> HttpResponse:
    if not _is_auditor(request):
        return _refused(request)
    form, filters = _filter(request)
    if filters is None:
        context = {"form": form, "page": None}
        return render(request, "audit/conversations.html", context, status=400)
    page_number = request.GET.get("page") or "1"
    access_log_write(
        actor=request.user,
        event_type="conversations.list",
        data={"filter": filters.as_record(), "page": page_number},
    )
    found = conversations_for_audit(auditor=request.user, filters=filters)
    page = Paginator(found, PAGE_SIZE).get_page(page_number)
    page.object_list = conversations_summarize(
        user=request.user, conversations=list(page.object_list)
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/conversations.html",
        {"form": form, "page": page, "query": query.urlencode()},
    )


@require_GET
def conversation_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    if not _is_auditor(request):
        return _refused(request)
    access_log_write(
        actor=request.user, event_type="conversation.view", subject=str(public_id), data={}
    )
    conversation = conversation_for_audit(auditor=request.user, public_id=public_id)
    if conversation is None:
        raise Http404("no such conversation")
    timeline = conversation_timeline(user=request.user, conversation=conversation)
    return render(
        request,
        "voice/conversation.html",
        {"conversation": conversation, "timeline": timeline, "audit": True},
    )


@require_GET
def export(request: HttpRequest, fmt: str) -> StreamingHttpResponse | HttpResponse:
    if not _is_auditor(request):
        return _refused(request)
    _form, filters = _filter(request)
    if filters is None:
        return HttpResponse("The filter is not valid.", status=400, content_type="text/plain")
    access_log_write(
        actor=request.user,
        event_type=f"export.{fmt}",
        data={"filter": filters.as_record()},
    )
    records = records_for_audit(auditor=request.user, filters=filters)
    lines = csv_lines(records) if fmt == "csv" else jsonl_lines(records)
    content_type = "text/csv" if fmt == "csv" else "application/x-ndjson"
    response = StreamingHttpResponse(streamed(lines), content_type=f"{content_type}; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="koe-audit-{stamp}.{fmt}"'
    return response


async def streamed(lines: Iterator[str], batch: int = 500) -> AsyncIterator[str]:
    """The lines, read a batch at a time in the ORM's thread. Koe runs under ASGI, where a
    plain iterator would be read whole before the first byte goes out; this keeps the export
    streaming (and its memory flat) however many records it has."""
    take = sync_to_async(lambda: list(itertools.islice(lines, batch)), thread_sensitive=True)
    while chunk := await take():
        yield "".join(chunk)


@require_GET
def access_log(request: HttpRequest) -> HttpResponse:
    if not _is_auditor(request):
        return _refused(request)
    access_log_write(actor=request.user, event_type="access_log.view", data={})
    page = Paginator(access_log_entries(auditor=request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(request, "audit/access_log.html", {"page": page})


@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    """Usage and cost, for auditors and administrators (superusers)."""
    if not (_is_auditor(request) or request.user.is_superuser):
        return _refused(request)
    today = timezone.localdate()
    form = UsagePeriodForm(
        request.GET or None, initial={"since": today - timedelta(days=29), "until": today}
    )
    since, until = today - timedelta(days=29), today
    if form.is_bound and form.is_valid():
        since = form.cleaned_data["since"] or since
        until = form.cleaned_data["until"] or until
    access_log_write(
        actor=request.user,
        event_type="usage.view",
        data={"filter": {"since": since.isoformat(), "until": until.isoformat()}},
    )
    groups, conversations = usage_groups(auditor=request.user, since=since, until=until)
    report = usage_report(
        groups=groups, conversations=conversations, table=price_table(settings.KOE_PRICES)
    )
    day_points = []
    day = since
    while day <= until:
        tally = report.days.get(day)
        day_points.append((day.isoformat(), tally.cost if tally else Decimal(0)))
        day += timedelta(days=1)
    top_users = [(name, tally.cost) for name, tally in list(report.users.items())[:10]]
    spread = histogram(report.conversation_costs)
    average = (
        sum(report.conversation_costs, Decimal(0)) / len(report.conversation_costs)
        if report.conversation_costs
        else Decimal(0)
    )
    return render(
        request,
        "audit/usage.html",
        {
            "form": form,
            "since": since,
            "until": until,
            "report": report,
            "daily_chart": charts.columns(day_points, label=_("Cost per day")),
            "users_chart": charts.rows(top_users, label=_("The users who cost most")),
            "spread_chart": charts.columns(spread, label=_("Conversations by cost"), unit=""),
            "spread": spread,
            "top_users": top_users,
            "average": average.quantize(Decimal("0.000001")),
        },
    )


@require_GET
def recording(request: HttpRequest, public_id: str, sequence: int) -> HttpResponse:
    """One turn's recorded audio, checked against the SHA-256 in its record before it plays."""
    if not _is_auditor(request):
        return _refused(request)
    access_log_write(
        actor=request.user,
        event_type="audio.play",
        subject=str(public_id),
        data={"sequence": sequence},
    )
    conversation = conversation_for_audit(auditor=request.user, public_id=public_id)
    record = (
        turn_recording(auditor=request.user, conversation=conversation, sequence=sequence)
        if conversation is not None
        else None
    )
    if record is None:
        raise Http404("no such recording")
    try:
        with default_storage.open(str(record["file"]), "rb") as stored:
            data = stored.read()
    except OSError as error:
        raise Http404("the recording is gone") from error
    if hashlib.sha256(data).hexdigest() != record.get("sha256"):
        return HttpResponse(
            "This recording does not match its audit record.", status=409, content_type="text/plain"
        )
    response = HttpResponse(data, content_type="audio/wav")
    response["Cache-Control"] = "private, no-store"
    return response
