"""Writes of the audit app: the access trail."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AccessLogEntry
from voice.integrity import chained_hash

# One chain for the whole trail: entries are few (a person's clicks), so writers take turns
# under this advisory lock to chain each entry to the one before.
CHAIN_LOCK = 0x6B6F65_61756474  # "koe" "audt"
GENESIS = hashlib.sha256(b"koe-access-log").hexdigest()


def access_entry_hash(
    *, previous: str, actor_id: int, subject: str, event_type: str, at: Any, data: Any
) -> str:
    """The chain hash of one access-log entry."""
    return chained_hash(
        previous=previous,
        content={
            "actor": actor_id,
            "subject": subject,
            "event_type": event_type,
            "at": at.isoformat(timespec="microseconds"),
            "data": data,
        },
    )


def access_log_write(
    *,
    actor: AbstractBaseUser | AnonymousUser,
    event_type: str,
    subject: str = "",
    data: dict[str, Any],
) -> AccessLogEntry:
    """Record that `actor` read or exported audit records (before they are shown)."""
    if actor.pk is None:
        raise ValueError("only a signed-in user leaves an access trail")
    actor_id = int(actor.pk)
    stored = json.loads(json.dumps(data, default=str))  # as the database gives it back
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK])
        previous = (
            AccessLogEntry.objects.order_by("-pk").values_list("chain_hash", flat=True).first()
            or GENESIS
        )
        at = timezone.now()
        return AccessLogEntry.objects.create(
            actor_id=actor_id,
            subject=subject[:64],
            event_type=event_type[:32],
            at=at,
            data=stored,
            chain_hash=access_entry_hash(
                previous=previous,
                actor_id=actor_id,
                subject=subject[:64],
                event_type=event_type[:32],
                at=at,
                data=stored,
            ),
        )
