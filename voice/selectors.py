"""Reads of the voice app, always for an acting user."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.utils import timezone

from accounts.roles import Role
from accounts.selectors import user_has_role, user_id_signed_in
from voice.integrity import ChainProblem, ConversationHeader, StoredEvent, chain_problems
from voice.models import Conversation, ConversationEvent
from voice.pricing import price_for, price_table
from voice.timeline import Timeline, timeline_build
from voice.usage import TOKEN_FIELDS


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
    for conversation in Conversation.objects.order_by("pk").iterator(chunk_size=batch_size):
        rows = (
            ConversationEvent.objects.filter(conversation_id=conversation.pk)
            .order_by("pk")
            .values_list(
                "sequence", "event_type", "subject", "at", "actor_id", "data", "chain_hash"
            )
        )
        events = [StoredEvent(*row) for row in rows.iterator(chunk_size=batch_size)]
        ended = conversation.record_count is not None
        yield from chain_problems(
            header=ConversationHeader.of(conversation),
            events=events,
            final=(conversation.record_count or 0, conversation.chain_head) if ended else None,
        )


# -- conversations: the employee's own, and the auditor's view of all -------------------------

ENDED_BY_ERROR = ("upstream_unavailable", "error")
EXPIRY_REASONS = ("session_expired", "max_session_age")


class NotAnAuditor(PermissionDenied):
    """Only the auditor role reads other people's conversations."""


@dataclass(frozen=True)
class ConversationFilter:
    username: str = ""
    since: date | None = None
    until: date | None = None  # inclusive
    text: str = ""
    tool: str = ""
    document_id: str = ""  # a cited document's public id
    provider: str = ""
    model: str = ""
    ended: str = ""  # "", "error" or "expiry"

    def as_record(self) -> dict[str, str]:
        """The filter as the access log keeps it (only what was set)."""
        return {k: str(v) for k, v in self.__dict__.items() if v not in ("", None)}


def conversations_summarize(
    *, user: AbstractBaseUser | AnonymousUser, conversations: Sequence[Conversation]
) -> Sequence[Conversation]:
    """Give each conversation of a page (already read through a selector for `user`) its
    `turns` and `tokens`, in one query over their records, not per row and never for the
    whole filtered set (counting a page must not sum a hundred thousand conversations)."""
    for conversation in conversations:
        if conversation.user_id != user.pk:
            _require_auditor(user)
            break
    sums = {
        row["conversation_id"]: row
        for row in ConversationEvent.objects.filter(
            conversation_id__in=[c.pk for c in conversations],
            event_type__in=("transcript", "usage"),
        )
        .values("conversation_id")
        .annotate(
            turns=Count("pk", filter=Q(event_type="transcript")),
            tokens=Coalesce(Sum(Cast(KeyTextTransform("input_tokens", "data"), IntegerField())), 0)
            + Coalesce(Sum(Cast(KeyTextTransform("output_tokens", "data"), IntegerField())), 0),
        )
        .order_by()
    }
    for conversation in conversations:
        row = sums.get(conversation.pk)
        conversation.turns = int(row["turns"]) if row else 0  # type: ignore[attr-defined]
        conversation.tokens = int(row["tokens"]) if row else 0  # type: ignore[attr-defined]
    return conversations


def day_start(day: date) -> datetime:
    """Midnight at the start of `day` in the local time zone (TIME_ZONE)."""
    return timezone.make_aware(datetime.combine(day, time.min))


def conversations_of_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Conversation]:
    """The user's own conversations, newest first."""
    return Conversation.objects.filter(user_id=user_id_signed_in(user)).order_by(
        "-started_at", "-pk"
    )


def conversation_of_user(
    *, user: AbstractBaseUser | AnonymousUser, public_id: str
) -> Conversation | None:
    """One of the user's own conversations (None for anyone else's: it does not exist for them)."""
    return Conversation.objects.filter(user_id=user_id_signed_in(user), public_id=public_id).first()


def _require_auditor(user: AbstractBaseUser | AnonymousUser) -> None:
    if not user_has_role(user=user, role=Role.AUDITOR):
        raise NotAnAuditor("the auditor role is required")


def conversations_for_audit(
    *, auditor: AbstractBaseUser | AnonymousUser, filters: ConversationFilter
) -> QuerySet[Conversation]:
    """Everyone's conversations matching the filter, newest first (auditors only)."""
    _require_auditor(auditor)
    found = Conversation.objects.all()
    if filters.username:
        found = found.filter(user__username=filters.username)
    # Days in the local time zone, as aware bounds (a ::date cast would skip the index).
    if filters.since:
        found = found.filter(started_at__gte=day_start(filters.since))
    if filters.until:
        found = found.filter(started_at__lt=day_start(filters.until + timedelta(days=1)))
    if filters.provider:
        found = found.filter(provider=filters.provider)
    if filters.model:
        found = found.filter(model=filters.model)
    if filters.ended == "error":
        found = found.filter(end_reason__in=ENDED_BY_ERROR)
    events = ConversationEvent.objects.filter(conversation=OuterRef("pk"))
    if filters.ended == "expiry":
        found = found.filter(
            Exists(events.filter(event_type="rollover", data__reason__in=EXPIRY_REASONS))
        )
    if filters.text:
        # Served by the trigram index on transcript text (English and Japanese alike).
        found = found.filter(
            Exists(events.filter(event_type="transcript", data__text__icontains=filters.text))
            | Exists(events.filter(event_type="segment", data__text__icontains=filters.text))
        )
    if filters.tool:
        found = found.filter(Exists(events.filter(event_type="tool_call", data__name=filters.tool)))
    if filters.document_id:
        found = found.filter(
            Exists(
                events.filter(
                    event_type="citations", data__document_ids__contains=[filters.document_id]
                )
            )
        )
    return found.select_related("user").order_by("-started_at", "-pk")


def conversation_for_audit(
    *, auditor: AbstractBaseUser | AnonymousUser, public_id: str
) -> Conversation | None:
    """Any conversation, for an auditor."""
    _require_auditor(auditor)
    return Conversation.objects.select_related("user").filter(public_id=public_id).first()


def conversation_records(
    *, user: AbstractBaseUser | AnonymousUser, conversation: Conversation
) -> QuerySet[ConversationEvent]:
    """A conversation's records in order, for its owner or an auditor."""
    if conversation.user_id != user.pk:
        _require_auditor(user)
    return ConversationEvent.objects.filter(conversation=conversation).order_by("sequence")


def conversation_choices(*, auditor: AbstractBaseUser | AnonymousUser) -> dict[str, list[str]]:
    """The providers, models and tools that occur, for the auditor's filter menus."""
    _require_auditor(auditor)
    choices = cache.get_or_set(CHOICES_CACHE_KEY, _choices, CHOICES_CACHE_SECONDS)
    return choices if isinstance(choices, dict) else _choices()


CHOICES_CACHE_KEY = "koe:audit:filter-choices"
# The menus scan every tool call; what occurs changes rarely, so they are reused a while.
CHOICES_CACHE_SECONDS = 300


def _choices() -> dict[str, list[str]]:
    # order_by(): without it the models' default ordering joins the DISTINCT (one row each).
    return {
        "provider": sorted(
            Conversation.objects.order_by().values_list("provider", flat=True).distinct()
        ),
        "model": sorted(Conversation.objects.order_by().values_list("model", flat=True).distinct()),
        "tool": sorted(
            ConversationEvent.objects.filter(event_type="tool_call")
            .order_by()
            .values_list("data__name", flat=True)
            .distinct()
        ),
    }


# Export column -> where the record's value comes from.
_EXPORT_COLUMNS = {
    "conversation": "conversation__public_id",
    "user": "conversation__user__username",
    "provider": "conversation__provider",
    "model": "conversation__model",
    "sequence": "sequence",
    "at": "at",
    "event_type": "event_type",
    "subject": "subject",
    "data": "data",
    "chain_hash": "chain_hash",
}
EXPORT_FIELDS = tuple(_EXPORT_COLUMNS)


def records_for_audit(
    *,
    auditor: AbstractBaseUser | AnonymousUser,
    filters: ConversationFilter,
    chunk_size: int = 2000,
) -> Iterator[dict[str, Any]]:
    """Every record of the filtered conversations, streamed from a server-side cursor (memory
    stays flat however many there are), in conversation and sequence order."""
    conversations = conversations_for_audit(auditor=auditor, filters=filters).values("pk")
    rows = (
        ConversationEvent.objects.filter(conversation__in=Subquery(conversations))
        .order_by("conversation_id", "sequence")
        .values_list(*_EXPORT_COLUMNS.values())
    )
    for row in rows.iterator(chunk_size=chunk_size):
        yield dict(zip(EXPORT_FIELDS, row, strict=True))


def _token_sums() -> dict[str, Any]:
    return {
        name: Coalesce(Sum(Cast(KeyTextTransform(name, "data"), IntegerField())), 0)
        for name in TOKEN_FIELDS
    }


def usage_groups(
    *, auditor: AbstractBaseUser | AnonymousUser, since: date, until: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Token sums per (day, user, provider, model) and per conversation, between two dates
    (inclusive), from the usage records (auditors and administrators)."""
    if not getattr(auditor, "is_superuser", False):
        _require_auditor(auditor)
    usage = ConversationEvent.objects.filter(
        event_type="usage", at__gte=day_start(since), at__lt=day_start(until + timedelta(days=1))
    )
    groups = [
        dict(row)
        for row in usage.annotate(day=TruncDate("at"))
        .values(
            "day",
            username=F("conversation__user__username"),
            provider=F("conversation__provider"),
            model=F("conversation__model"),
        )
        .annotate(**_token_sums())
        .order_by()
    ]
    conversations = [
        dict(row)
        for row in usage.values(
            "conversation_id",
            provider=F("conversation__provider"),
            model=F("conversation__model"),
        )
        .annotate(**_token_sums())
        .order_by()
    ]
    return groups, conversations


def turn_recording(
    *, auditor: AbstractBaseUser | AnonymousUser, conversation: Conversation, sequence: int
) -> dict[str, Any] | None:
    """The audio record at `sequence` of a conversation (auditors only): file, SHA-256, ..."""
    _require_auditor(auditor)
    record = ConversationEvent.objects.filter(
        conversation=conversation, sequence=sequence, event_type="audio"
    ).first()
    return dict(record.data) if record else None


def conversation_timeline(
    *, user: AbstractBaseUser | AnonymousUser, conversation: Conversation
) -> Timeline:
    """A conversation's records as its timeline, costed at its model's price (for its owner or
    an auditor)."""
    price = price_for(
        conversation.model, provider=conversation.provider, table=price_table(settings.KOE_PRICES)
    )
    return timeline_build(conversation_records(user=user, conversation=conversation), price=price)
