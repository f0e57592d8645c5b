"""Writes of the voice app: conversations and their audit events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from voice.models import Conversation, ConversationEvent


def conversation_start(*, user: User, provider: str, model: str) -> Conversation:
    """Open the record of a new voice conversation."""
    return Conversation.objects.create(user=user, provider=provider, model=model)


def conversation_end(*, conversation: Conversation, reason: str) -> None:
    """Close the record once; a second call keeps the first ending."""
    Conversation.objects.filter(pk=conversation.pk, ended_at__isnull=True).update(
        ended_at=timezone.now(), end_reason=reason[:32]
    )


@dataclass(frozen=True)
class EventRecord:
    sequence: int
    event_type: str
    at: float  # unix time
    data: dict[str, Any]
    subject: str = ""


def conversation_events_append(*, conversation: Conversation, events: Sequence[EventRecord]) -> int:
    """Append a batch of audit events; replaying a batch after a failure adds no duplicates."""
    rows = [
        ConversationEvent(
            conversation=conversation,
            actor_id=conversation.user_id,
            subject=e.subject[:64],
            event_type=e.event_type[:32],
            at=datetime.fromtimestamp(e.at, tz=UTC),
            data=e.data,
            sequence=e.sequence,
        )
        for e in events
    ]
    try:
        with transaction.atomic():
            ConversationEvent.objects.bulk_create(rows)
    except IntegrityError:
        # A retried batch whose first attempt did commit: keep what is there, add the rest.
        with transaction.atomic():
            ConversationEvent.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)
