"""The access trail: who among the auditors read or exported what, and when."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AccessLogEntry(models.Model):
    """One read of the audit records (a list, a conversation, an export, the trail itself).

    Shaped like an event log (actor, subject, event_type, at, data); append-only in the
    database (the same trigger as the conversation records) and hash-chained, entry to entry.
    """

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    subject = models.CharField(max_length=64, blank=True)  # a conversation's public id, or ""
    event_type = models.CharField(max_length=32, db_index=True)
    at = models.DateTimeField(db_index=True)
    data = models.JSONField(default=dict)  # the filter used, the count of rows, ...
    chain_hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.event_type} by {self.actor_id} at {self.at:%Y-%m-%d %H:%M:%S}"
