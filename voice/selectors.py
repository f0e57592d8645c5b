"""Reads of the voice app, always for an acting user."""

from __future__ import annotations

from datetime import datetime, time

from django.db.models import IntegerField, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from voice.models import ConversationEvent


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
