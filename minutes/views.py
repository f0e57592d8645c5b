"""Meeting minutes pages: the list with the live recorder, one meeting's minutes (edit the
words and speakers, name the meeting, summarise), and its exports.

Owners read and edit their own minutes; auditors read anyone's, and every such read or export
leaves an access-log entry first, as with conversations.
"""

from __future__ import annotations

import json

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Preference
from accounts.roles import Role
from accounts.selectors import transcription_language_of, user_has_role
from audit.services import access_log_write
from minutes.exports import MinutesDocument, minutes_docx, minutes_markdown, summary_label
from minutes.labels import recorder_labels
from minutes.model_summary import SummaryFailed, model_summary
from minutes.models import Minutes, MinutesSummary
from minutes.selectors import (
    minutes_get,
    minutes_lines,
    minutes_of_user,
    minutes_summary_latest,
)
from minutes.services import minutes_details_set, minutes_segment_edit, minutes_summary_add
from minutes.summary import extractive_summary
from voice import config
from voice.limits import upstream_connect_allowed
from voice.realtime.providers import ProviderKind, upstream_connector

PAGE_SIZE = 25
MAX_EDIT_BODY = 64 * 1024


def _employee(request: HttpRequest) -> bool:
    return user_has_role(user=request.user, role=Role.EMPLOYEE)


def _minutes_or_404(request: HttpRequest, public_id: str, *, trail: str = "") -> Minutes:
    minutes = minutes_get(user=request.user, public_id=str(public_id))
    if minutes is None:
        raise Http404("no such minutes")
    if trail and minutes.conversation.user_id != request.user.pk:
        # An auditor reads someone else's meeting: the trail says so before it is shown.
        access_log_write(actor=request.user, event_type=trail, subject=str(public_id), data={})
    return minutes


@require_GET
def minutes_list(request: HttpRequest) -> HttpResponse:
    if not _employee(request):
        return render(request, "accounts/no_access.html", status=403)
    page = Paginator(minutes_of_user(user=request.user), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "minutes/list.html",
        {
            "page": page,
            "language": transcription_language_of(user=request.user),
            "languages": Preference.TranscriptionLanguage.choices,
            "minutes_labels": recorder_labels(),
        },
    )


@require_GET
def minutes_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    minutes = _minutes_or_404(request, public_id, trail="minutes.view")
    lines = minutes_lines(user=request.user, minutes=minutes)
    summary = minutes_summary_latest(user=request.user, minutes=minutes)
    speakers = list(
        dict.fromkeys([*minutes.speakers, *(line.speaker for line in lines if line.speaker)])
    )
    return render(
        request,
        "minutes/detail.html",
        {
            "minutes": minutes,
            "conversation": minutes.conversation,
            "lines": lines,
            "summary": summary,
            "summary_label": summary_label(summary) if summary else "",
            "speakers": speakers,
            "owner": minutes.conversation.user_id == request.user.pk,
        },
    )


@require_POST
def minutes_details(request: HttpRequest, public_id: str) -> HttpResponse:
    minutes = _minutes_or_404(request, public_id)
    speakers = request.POST.get("speakers", "").replace("、", ",").replace("\n", ",").split(",")
    try:
        minutes_details_set(
            user=request.user,  # type: ignore[arg-type]
            minutes=minutes,
            title=request.POST.get("title", ""),
            speakers=speakers,
        )
    except PermissionDenied:
        return render(request, "accounts/no_access.html", status=403)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("minutes:detail", public_id)


@require_POST
def minutes_segment(request: HttpRequest, public_id: str, segment_id: str) -> JsonResponse:
    minutes = _minutes_or_404(request, public_id)
    if len(request.body) > MAX_EDIT_BODY:
        return JsonResponse({"error": _("The change is too large.")}, status=413)
    try:
        body = json.loads(request.body or b"{}")
    except json.JSONDecodeError:
        return JsonResponse({"error": _("Send the change as JSON.")}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"error": _("Send the change as JSON.")}, status=400)
    text, speaker = body.get("text"), body.get("speaker")
    if not all(v is None or isinstance(v, str) for v in (text, speaker)):
        return JsonResponse({"error": _("The words and the speaker are text.")}, status=400)
    try:
        minutes_segment_edit(
            user=request.user,  # type: ignore[arg-type]
            minutes=minutes,
            segment_id=segment_id,
            text=text,
            speaker=speaker,
        )
    except PermissionDenied:
        return JsonResponse({"error": _("Only the owner edits these minutes.")}, status=403)
    except ValidationError as exc:
        return JsonResponse({"error": " ".join(exc.messages)}, status=400)
    (line,) = minutes_lines(user=request.user, minutes=minutes, segment_id=segment_id)
    return JsonResponse(
        {
            "segment_id": segment_id,
            "text": line.text,
            "speaker": line.speaker,
            "edited": line.edited,
        }
    )


@require_POST
def minutes_summarize(request: HttpRequest, public_id: str) -> HttpResponse:
    minutes = _minutes_or_404(request, public_id)
    if minutes.conversation.user_id != request.user.pk:
        return render(request, "accounts/no_access.html", status=403)
    lines = minutes_lines(user=request.user, minutes=minutes)
    if not lines:
        messages.error(request, _("There is nothing to summarise yet."))
        return redirect("minutes:detail", public_id)
    provider = config.provider_config()
    if provider.kind == ProviderKind.LOCAL:
        decisions, actions = extractive_summary(lines)
        source, model = MinutesSummary.Source.EXTRACTIVE, "koe-local"
    else:
        refusal = async_to_sync(upstream_connect_allowed)()
        if refusal is not None:  # model sessions are rate-limited for everyone together
            messages.error(request, refusal.reason)
            return redirect("minutes:detail", public_id)
        connect = upstream_connector(provider, config.provider_headers(provider))
        try:
            decisions, actions = async_to_sync(model_summary)(
                connect=connect,  # type: ignore[arg-type]
                lines=lines,
                timeout_s=settings.KOE_SUMMARY_TIMEOUT_SECONDS,
            )
        except SummaryFailed as exc:
            messages.error(request, _("The summary could not be made: %(why)s") % {"why": exc})
            return redirect("minutes:detail", public_id)
        source, model = MinutesSummary.Source.MODEL, provider.model
    minutes_summary_add(
        user=request.user,
        minutes=minutes,
        source=source,
        model=model,
        decisions=decisions,
        actions=actions,
    )
    return redirect("minutes:detail", public_id)


@require_GET
def minutes_export(request: HttpRequest, public_id: str, fmt: str) -> HttpResponse:
    minutes = _minutes_or_404(request, public_id, trail=f"minutes.export.{fmt}")
    doc = MinutesDocument(
        title=minutes.title,
        started_at=minutes.conversation.started_at,
        lines=minutes_lines(user=request.user, minutes=minutes),
        summary=minutes_summary_latest(user=request.user, minutes=minutes),
    )
    name = f"minutes-{minutes.conversation.started_at:%Y%m%d-%H%M}"
    if fmt == "md":
        response = HttpResponse(minutes_markdown(doc), content_type="text/markdown; charset=utf-8")
    else:
        response = HttpResponse(
            minutes_docx(doc),
            content_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        )
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response
