"""The retention purge: the one way audit records leave the database, and its own record."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import DatabaseError, transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from voice.models import Conversation, ConversationEvent, RetentionPurge
from voice.services import (
    EventRecord,
    conversation_events_append,
    conversation_start,
    conversations_purge,
)
from voice.tasks import retention_purge_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation_days_ago(backdate):
    def make(user, days: int) -> Conversation:
        conversation = backdate(
            conversation_start(user=user, provider="local", model="koe-local"), days=days
        )
        return with_records(conversation)

    return make


def with_records(conversation: Conversation) -> Conversation:
    conversation_events_append(
        conversation=conversation,
        events=[EventRecord(n, "transcript", 0.0 + n, {"text": f"turn {n}"}) for n in (1, 2, 3)],
    )
    return conversation


def test_old_conversations_go_with_their_records_and_the_purge_is_recorded(conversation_days_ago):
    user = get_user_model().objects.create_user("emi")
    old = [conversation_days_ago(user, 100), conversation_days_ago(user, 91)]
    recent = conversation_days_ago(user, 89)
    purge = conversations_purge(retention_days=90)
    assert purge is not None
    assert list(Conversation.objects.all()) == [recent]
    assert ConversationEvent.objects.count() == 3
    assert (purge.conversations, purge.records, purge.retention_days) == (2, 6, 90)
    assert purge.conversation_ids == [str(old[0].public_id), str(old[1].public_id)]
    # What stays still verifies; the purge's own record cannot be changed either.
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "the chains are intact" in out.getvalue()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        RetentionPurge.objects.filter(pk=purge.pk).update(conversations=0)


def test_retention_off_purges_nothing(settings, conversation_days_ago):
    settings.KOE_RETENTION_DAYS = 0
    user = get_user_model().objects.create_user("emi")
    conversation_days_ago(user, 3650)
    assert conversations_purge(retention_days=0) is None
    out = io.StringIO()
    call_command("retention_purge", stdout=out)
    assert "kept" in out.getvalue() and Conversation.objects.count() == 1


def test_the_command_purges_now_and_says_what_went(settings, conversation_days_ago):
    settings.KOE_RETENTION_DAYS = 30
    user = get_user_model().objects.create_user("emi")
    conversation_days_ago(user, 31)
    out = io.StringIO()
    call_command("retention_purge", stdout=out)
    assert "purged 1 conversations and 3 records" in out.getvalue()


def test_the_purge_runs_daily_on_the_worker(settings, conversation_days_ago):
    settings.KOE_RETENTION_DAYS = 30
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    call_command("retention_purge", "--schedule", stdout=io.StringIO())
    call_command("retention_purge", "--schedule", stdout=io.StringIO())  # idempotent
    assert DBTaskResult.objects.filter(status="READY").count() == 1
    # When the worker runs it, it purges and queues itself for tomorrow.
    user = get_user_model().objects.create_user("emi")
    conversation_days_ago(user, 31)
    assert retention_purge_task.call() == "purged 1 conversations (3 records)"
    later = DBTaskResult.objects.filter(status="READY").order_by("-enqueued_at").first()
    assert later is not None and later.run_after is not None
    assert timedelta(hours=23) < later.run_after - timezone.now() <= timedelta(days=1)
