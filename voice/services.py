"""Writes of the voice app: conversations and their audit events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from voice.integrity import event_hash, genesis_hash
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
    """Append a batch of audit events, each chained to the one before it (voice.integrity);
    replaying a batch after a failure adds no duplicates."""
    if not events:
        return 0
    public_id = str(conversation.public_id)
    previous = (
        ConversationEvent.objects.filter(
            conversation=conversation, sequence__lt=min(e.sequence for e in events)
        )
        .order_by("-sequence")
        .values_list("chain_hash", flat=True)
        .first()
    ) or genesis_hash(conversation_public_id=public_id)
    rows = []
    for e in sorted(events, key=lambda e: e.sequence):
        row = ConversationEvent(
            conversation=conversation,
            actor_id=conversation.user_id,
            subject=e.subject[:64],
            event_type=e.event_type[:32],
            at=datetime.fromtimestamp(e.at, tz=UTC),
            data=e.data,
            sequence=e.sequence,
        )
        row.chain_hash = previous = event_hash(
            previous=previous,
            conversation_public_id=public_id,
            sequence=row.sequence,
            event_type=row.event_type,
            subject=row.subject,
            at=row.at,
            actor_id=row.actor_id,
            data=_as_stored(row.data),
        )
        rows.append(row)
    try:
        with transaction.atomic():
            ConversationEvent.objects.bulk_create(rows)
    except IntegrityError:
        # A retried batch whose first attempt did commit: keep what is there, add the rest.
        with transaction.atomic():
            ConversationEvent.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _as_stored(data: dict[str, Any]) -> dict[str, Any]:
    """The data as the database will give it back (JSON: tuples become lists), so that the
    hash written now is the hash recomputed later."""
    return json.loads(json.dumps(data))
