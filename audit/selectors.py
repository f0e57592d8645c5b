"""Reads of the audit app, always for an acting auditor."""

from __future__ import annotations

from collections.abc import Iterator

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from accounts.roles import Role
from accounts.selectors import user_has_role
from audit.models import AccessLogEntry
from audit.services import GENESIS, access_entry_hash
from voice.selectors import NotAnAuditor


def access_log_entries(*, auditor: AbstractBaseUser | AnonymousUser) -> QuerySet[AccessLogEntry]:
    """The access trail, newest first (auditors only)."""
    if not user_has_role(user=auditor, role=Role.AUDITOR):
        raise NotAnAuditor("the auditor role is required")
    return AccessLogEntry.objects.select_related("actor").order_by("-at", "-pk")


def access_log_chain_problems() -> Iterator[str]:
    """Every break in the access log's hash chain (the integrity check)."""
    previous = GENESIS
    for entry in AccessLogEntry.objects.order_by("pk").iterator(chunk_size=2000):
        expected = access_entry_hash(
            previous=previous,
            actor_id=entry.actor_id,
            subject=entry.subject,
            event_type=entry.event_type,
            at=entry.at,
            data=entry.data,
        )
        if expected != entry.chain_hash:
            yield f"access log entry {entry.pk}: edited, removed before it, or moved"
        previous = entry.chain_hash
