"""Conversations and their append-only event log (the audit record of every turn)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Conversation(models.Model):
    """One voice socket: who talked, to which model, from when to when, and how it ended."""

    class EndReason(models.TextChoices):
        CLIENT_CLOSED = "client_closed", _("closed by the user")
        UPSTREAM_UNAVAILABLE = "upstream_unavailable", _("model unavailable")
        ERROR = "error", _("error")
        SERVER_SHUTDOWN = "server_shutdown", _("server stopped (restart or deployment)")
        SETTINGS_REFUSED = "settings_refused", _("the model refused the settings")

    class Kind(models.TextChoices):
        ASSISTANT = "assistant", _("talk with the assistant")
        MINUTES = "minutes", _("meeting minutes (transcription only)")

    # The id that leaves the server: opaque, not the row number.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="conversations"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ASSISTANT)
    provider = models.CharField(max_length=32)
    model = models.CharField(max_length=128)
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True)
    # Written once, at the end: how many records the conversation ended with and the last
    # one's chain hash, so that records removed from its end show too (voice.integrity).
    record_count = models.PositiveIntegerField(null=True, blank=True)
    chain_head = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["user", "-started_at"])]

    def __str__(self) -> str:
        return f"conversation {self.public_id} of user {self.user_id}"

    def end_reason_label(self) -> str:
        """How it ended, in words and the reader's language (the code itself if unknown)."""
        try:
            return str(self.EndReason(self.end_reason).label)
        except ValueError:
            return self.end_reason


class ConversationEvent(models.Model):
    """An append-only audit event: a transcript, a tool call, usage, latency, a rollover...

    Shaped like an event log (actor, subject, event_type, at, data); written only by
    voice.services, never updated or deleted by Koe.
    """

    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Koe's item id (k_...) when the event concerns one turn, else empty.
    subject = models.CharField(max_length=64, blank=True, db_index=True)
    event_type = models.CharField(max_length=32, db_index=True)
    at = models.DateTimeField()
    data = models.JSONField(default=dict)
    # Position within the conversation: the order the session produced the events in.
    sequence = models.PositiveIntegerField()
    # SHA-256 over this event and the previous event's hash (voice.integrity).
    chain_hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["conversation_id", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "sequence"], name="conversation_event_sequence_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.sequence} of conversation {self.conversation_id}"


class RetentionPurge(models.Model):
    """What one run of the retention purge removed (append-only, like the records it purged)."""

    at = models.DateTimeField()
    cutoff = models.DateTimeField()  # conversations started before this were purged
    retention_days = models.PositiveIntegerField()
    conversations = models.PositiveIntegerField()
    records = models.PositiveIntegerField()
    audio_files = models.PositiveIntegerField(default=0)
    # The purged conversations' public ids (as many as fit here; the counts are complete).
    conversation_ids = models.JSONField(default=list)

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"purge at {self.at:%Y-%m-%d %H:%M}: {self.conversations} conversations"
