"""Writes of the voice app: conversations and their audit events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from voice.integrity import ConversationHeader, event_hash, genesis_hash
from voice.models import Conversation, ConversationEvent, RetentionPurge


def conversation_start(*, user: User, provider: str, model: str) -> Conversation:
    """Open the record of a new voice conversation."""
    return Conversation.objects.create(user=user, provider=provider, model=model)


def conversation_end(*, conversation: Conversation, reason: str) -> None:
    """Close the record once (after its last record is written); a second call keeps the first
    ending. The count and last hash of its records are sealed into it."""
    last = (
        ConversationEvent.objects.filter(conversation=conversation)
        .order_by("-sequence")
        .values_list("chain_hash", flat=True)
        .first()
    )
    Conversation.objects.filter(pk=conversation.pk, ended_at__isnull=True).update(
        ended_at=timezone.now(),
        end_reason=reason[:32],
        record_count=ConversationEvent.objects.filter(conversation=conversation).count(),
        chain_head=last or "",
    )


@dataclass(frozen=True)
class EventRecord:
    sequence: int
    event_type: str
    at: float  # unix time
    data: dict[str, Any]
    subject: str = ""


@dataclass(frozen=True)
class ChainHead:
    """The last stored event of a conversation, as its one writer (the recorder) knows it."""

    sequence: int
    chain_hash: str


def conversation_events_append(
    *, conversation: Conversation, events: Sequence[EventRecord], head: ChainHead | None = None
) -> ChainHead | None:
    """Append a batch of audit events, each chained to the one before it (voice.integrity);
    replaying a batch after a failure adds no duplicates. `head`, the last event written
    before, saves reading it back; returns the new head."""
    if not events:
        return head
    public_id = str(conversation.public_id)
    first = min(e.sequence for e in events)
    if head is not None and head.sequence == first - 1:
        previous = head.chain_hash
    elif first == 1:
        previous = genesis_hash(header=ConversationHeader.of(conversation))
    else:
        previous = (
            ConversationEvent.objects.filter(conversation=conversation, sequence__lt=first)
            .order_by("-sequence")
            .values_list("chain_hash", flat=True)
            .first()
        ) or genesis_hash(header=ConversationHeader.of(conversation))
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
    return ChainHead(sequence=rows[-1].sequence, chain_hash=rows[-1].chain_hash)


def _as_stored(data: dict[str, Any]) -> dict[str, Any]:
    """The data as the database will give it back (JSON: tuples become lists), so that the
    hash written now is the hash recomputed later."""
    return json.loads(json.dumps(data))


PURGE_IDS_KEPT = 10_000


def conversations_purge(
    *, retention_days: int, now: datetime | None = None
) -> RetentionPurge | None:
    """Delete the conversations (and their records) that started more than `retention_days`
    ago, and record what was removed. The only code path that deletes audit records: it tells
    the database so (the append-only trigger lets this transaction's deletes through)."""
    if retention_days <= 0:
        return None
    now = now or timezone.now()
    cutoff = now - timedelta(days=retention_days)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL koe.retention_purge = 'on'")
        old = Conversation.objects.filter(started_at__lt=cutoff)
        ids = list(old.order_by("started_at").values_list("public_id", flat=True))
        files = [
            str(name)
            for name in ConversationEvent.objects.filter(conversation__in=old, event_type="audio")
            .values_list("data__file", flat=True)
            .order_by()
            if name
        ]
        records, _ = ConversationEvent.objects.filter(conversation__in=old).delete()
        # Minutes, their edits and summaries go with their conversation (cascade); the count
        # is of conversations.
        _, deleted = old.delete()
        conversations = deleted.get("voice.Conversation", 0)
        purge = RetentionPurge.objects.create(
            at=now,
            cutoff=cutoff,
            retention_days=retention_days,
            conversations=conversations,
            records=records,
            audio_files=len(files),
            conversation_ids=[str(i) for i in ids[:PURGE_IDS_KEPT]],
        )
        # The recordings go once the rows are gone for good (not if the purge rolls back).
        folders = [f"recordings/{public_id}" for public_id in ids]
        transaction.on_commit(lambda: _files_delete(files, folders), robust=True)
    return purge


def _files_delete(names: list[str], folders: list[str]) -> None:
    """The recordings of purged conversations, and anything else left in their folders (a file
    whose record was never written)."""
    for name in names:
        default_storage.delete(name)
    for folder in folders:
        try:
            _folders, files = default_storage.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in files:
            default_storage.delete(f"{folder}/{name}")
