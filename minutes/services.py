"""Writes of meeting minutes: start, title and speakers, edits of segments, summaries."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from minutes.models import Minutes, MinutesEdit, MinutesSummary
from voice.models import Conversation, ConversationEvent

MAX_SPEAKERS = 9  # the keys 1-9 pick them
MAX_SPEAKER_CHARS = 80
MAX_TEXT_CHARS = 10_000


def minutes_start(*, user: User, provider: str, model: str, language: str) -> Minutes:
    """Open the record of a new meeting (a transcription-only conversation)."""
    with transaction.atomic():
        conversation = Conversation.objects.create(
            user=user, provider=provider, model=model, kind=Conversation.Kind.MINUTES
        )
        # Named by its start, in a form every language reads (the socket has no language).
        started = timezone.localtime(conversation.started_at)
        return Minutes.objects.create(
            conversation=conversation, language=language, title=f"{started:%Y-%m-%d %H:%M}"
        )


def _own(user: User, minutes: Minutes) -> None:
    # Only the person whose meeting it is edits it; auditors read, they do not write.
    if minutes.conversation.user_id != user.pk:
        raise PermissionDenied("only the owner edits these minutes")


def _speaker_clean(name: str) -> str:
    name = " ".join(name.split())
    if len(name) > MAX_SPEAKER_CHARS:
        raise ValidationError(f"a speaker's name has at most {MAX_SPEAKER_CHARS} characters")
    return name


def minutes_details_set(
    *, user: User, minutes: Minutes, title: str, speakers: Sequence[str]
) -> Minutes:
    """Rename the meeting and set the speakers offered for quick assignment."""
    _own(user, minutes)
    names = list(dict.fromkeys(n for n in (_speaker_clean(s) for s in speakers) if n))
    if len(names) > MAX_SPEAKERS:
        raise ValidationError(f"at most {MAX_SPEAKERS} speakers can be offered")
    minutes.title = " ".join(title.split())[:200]
    minutes.speakers = names
    minutes.save(update_fields=["title", "speakers"])
    return minutes


def _segment_exists(minutes: Minutes, segment_id: str) -> bool:
    return ConversationEvent.objects.filter(
        conversation_id=minutes.conversation_id, event_type="segment", subject=segment_id
    ).exists()


def minutes_segment_edit(
    *,
    user: User,
    minutes: Minutes,
    segment_id: str,
    text: str | None = None,
    speaker: str | None = None,
) -> MinutesEdit:
    """Change a segment's words or speaker; the words as heard stay in the record."""
    _own(user, minutes)
    if text is None and speaker is None:
        raise ValidationError("nothing to change")
    if not _segment_exists(minutes, segment_id):
        raise ValidationError("no such segment in these minutes")
    if text is not None:
        text = text.strip()
        if not text or len(text) > MAX_TEXT_CHARS:
            raise ValidationError(f"a segment has 1 to {MAX_TEXT_CHARS} characters")
    return MinutesEdit.objects.create(
        minutes=minutes,
        actor=user,
        segment_id=segment_id,
        text=text,
        speaker=None if speaker is None else _speaker_clean(speaker),
    )


def minutes_summary_add(
    *,
    user: User,
    minutes: Minutes,
    source: str,
    model: str,
    decisions: Sequence[str],
    actions: Sequence[str],
) -> MinutesSummary:
    """Keep a generated summary (the newest one is shown, older ones stay in the record)."""
    _own(user, minutes)
    return MinutesSummary.objects.create(
        minutes=minutes,
        actor=user,
        source=MinutesSummary.Source(source),
        model=model,
        decisions=[str(d) for d in decisions],
        actions=[str(a) for a in actions],
    )
