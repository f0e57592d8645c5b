"""Reads of the voice app, always for an acting user."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time

from django.db.models import IntegerField, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from voice.integrity import ChainProblem, StoredEvent, chain_problems
from voice.models import Conversation, ConversationEvent


def user_tokens_today(*, user_id: int) -> int:
    """Tokens (input + output) the user's conversations used since local midnight."""
    midnight = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    totals = ConversationEvent.objects.filter(
        actor_id=user_id, event_type="usage", at__gte=midnight
    ).aggregate(
        inp=Sum(Cast(KeyTextTransform("input_tokens", "data"), IntegerField())),
        out=Sum(Cast(KeyTextTransform("output_tokens", "data"), IntegerField())),
    )
    return int(totals["inp"] or 0) + int(totals["out"] or 0)


def conversation_chain_problems(*, batch_size: int = 2000) -> Iterator[ChainProblem]:
    """Every break in every conversation's hash chain (the integrity check; it reveals no
    content, only where the records were changed)."""
    conversations = Conversation.objects.order_by("pk").values_list("pk", "public_id")
    for pk, public_id in conversations.iterator(chunk_size=batch_size):
        rows = (
            ConversationEvent.objects.filter(conversation_id=pk)
            .order_by("pk")
            .values_list(
                "sequence", "event_type", "subject", "at", "actor_id", "data", "chain_hash"
            )
        )
        events = [StoredEvent(*row) for row in rows.iterator(chunk_size=batch_size)]
        if events:
            yield from chain_problems(conversation_public_id=str(public_id), events=events)
