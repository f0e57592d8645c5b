"""Reads of meeting minutes, always for an acting user: the owner, or an auditor."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from accounts.roles import Role
from accounts.selectors import user_has_role, user_id_signed_in
from minutes.models import Minutes, MinutesSummary
from voice.models import ConversationEvent


@dataclass
class Line:
    """One segment of the minutes: the words as heard, and as edited."""

    segment_id: str
    start_ms: int
    end_ms: int
    text: str  # edited if edited, else as heard
    speaker: str  # named if named, else the provider's label (or "")
    heard_text: str
    heard_speaker: str
    edited: bool = False
    failed: bool = False  # the model could not transcribe it: no words as heard


def minutes_of_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Minutes]:
    """The user's own minutes, newest first."""
    return (
        Minutes.objects.filter(conversation__user_id=user_id_signed_in(user))
        .select_related("conversation")
        .order_by("-conversation__started_at", "-pk")
    )


def minutes_get(*, user: AbstractBaseUser | AnonymousUser, public_id: str) -> Minutes | None:
    """One minutes record: the owner's own, or anyone's for an auditor (None otherwise: for
    anyone else it does not exist)."""
    found = Minutes.objects.select_related("conversation", "conversation__user").filter(
        conversation__public_id=public_id
    )
    if not user_has_role(user=user, role=Role.AUDITOR):
        found = found.filter(conversation__user_id=user_id_signed_in(user))
    return found.first()


def minutes_lines(
    *, user: AbstractBaseUser | AnonymousUser, minutes: Minutes, segment_id: str | None = None
) -> list[Line]:
    """The transcript in meeting order, each segment with its latest edit applied (only the
    one segment, when `segment_id` is given: an edit's answer need not read the meeting)."""
    _check(user, minutes)
    lines: dict[str, Line] = {}
    records = ConversationEvent.objects.filter(
        conversation_id=minutes.conversation_id, event_type="segment"
    ).order_by("sequence")
    edits = minutes.edits.order_by("pk")
    if segment_id is not None:
        records = records.filter(subject=segment_id)  # a segment's record has it as subject
        edits = edits.filter(segment_id=segment_id)
    for record in records:
        data = record.data or {}
        key = str(data.get("item_id") or record.subject)
        text = str(data.get("text") or "")
        speaker = str(data.get("speaker") or "")
        lines[key] = Line(
            segment_id=key,
            start_ms=int(data.get("start_ms") or 0),
            end_ms=int(data.get("end_ms") or 0),
            text=text,
            speaker=speaker,
            heard_text=text,
            heard_speaker=speaker,
            failed=bool(data.get("failed")),
        )
    for edit in edits:
        line = lines.get(edit.segment_id)
        if line is None:
            continue
        if edit.text is not None:
            line.text = edit.text
        if edit.speaker is not None:
            line.speaker = edit.speaker
        line.edited = line.text != line.heard_text or line.speaker != line.heard_speaker
    return sorted(lines.values(), key=lambda line: (line.start_ms, line.segment_id))


def minutes_summary_latest(
    *, user: AbstractBaseUser | AnonymousUser, minutes: Minutes
) -> MinutesSummary | None:
    """The newest generated summary, if any."""
    _check(user, minutes)
    return minutes.summaries.order_by("-at", "-pk").first()


def _check(user: AbstractBaseUser | AnonymousUser, minutes: Minutes) -> None:
    if minutes.conversation.user_id != user_id_signed_in(user) and not user_has_role(
        user=user, role=Role.AUDITOR
    ):
        raise PermissionDenied("these minutes are someone else's")
