"""The conversation records' hash chain, the database's append-only rule and audit_verify."""

from __future__ import annotations

import io
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from voice.models import Conversation, ConversationEvent
from voice.services import (
    EventRecord,
    conversation_end,
    conversation_events_append,
    conversation_start,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def conversation():
    user = get_user_model().objects.create_user("emi")
    conversation = conversation_start(user=user, provider="local", model="koe-local")
    now = time.time()
    records = [
        EventRecord(
            1, "transcript", now, {"item_id": "k_1", "role": "user", "text": "有給は何日？"}, "k_1"
        ),
        EventRecord(
            2,
            "tool_call",
            now + 0.1,
            {
                "name": "search_knowledge",
                "arguments": '{"query": "leave"}',
                "document_ids": ("d1", "d2"),
            },
        ),
        EventRecord(
            3,
            "transcript",
            now + 0.5,
            {"item_id": "k_2", "role": "assistant", "text": "Twenty days."},
            "k_2",
        ),
        EventRecord(
            4, "usage", now + 0.6, {"input_tokens": 120, "output_tokens": 40, "ratio": 0.1}
        ),
        EventRecord(5, "ended", now + 1.0, {"reason": "client_closed"}),
    ]
    conversation_events_append(conversation=conversation, events=records[:2])
    conversation_events_append(conversation=conversation, events=records[2:])
    conversation_end(conversation=conversation, reason="client_closed")
    conversation.refresh_from_db()
    return conversation


def verify() -> str:
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def verify_fails() -> str:
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("audit_verify", stdout=out)
    return out.getvalue() + str(failed.value)


def as_superuser_without_triggers(sql: str, params: list) -> None:
    """What someone with the database's superuser could do behind Koe's back."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(sql, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def test_intact_chains_verify(conversation):
    assert (
        "checked 1 conversations, 5 records, 0 access-log entries: the chains are intact"
        in verify()
    )
    hashes = list(
        ConversationEvent.objects.order_by("sequence").values_list("chain_hash", flat=True)
    )
    assert len(set(hashes)) == 5 and all(len(h) == 64 for h in hashes)


def test_a_replayed_batch_adds_nothing_and_keeps_the_chain(conversation):
    again = [EventRecord(5, "ended", time.time(), {"reason": "other"})]
    conversation_events_append(conversation=conversation, events=again)
    assert ConversationEvent.objects.count() == 5
    assert "intact" in verify()


def test_koe_itself_cannot_update_or_delete_a_record(conversation):
    event = ConversationEvent.objects.get(sequence=3)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        ConversationEvent.objects.filter(pk=event.pk).update(data={"text": "Forty days."})
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.delete()
    assert ConversationEvent.objects.get(pk=event.pk).data["text"] == "Twenty days."


def test_an_edited_record_is_reported(conversation):
    event = ConversationEvent.objects.get(sequence=3)
    as_superuser_without_triggers(
        "UPDATE voice_conversationevent SET data = jsonb_set(data, '{text}', %s) WHERE id = %s",
        ['"Forty days."', event.pk],
    )
    report = verify_fails()
    assert "#3: edited" in report and "1 problem(s)" in report


def test_a_deleted_record_is_reported(conversation):
    event = ConversationEvent.objects.get(sequence=2)
    as_superuser_without_triggers("DELETE FROM voice_conversationevent WHERE id = %s", [event.pk])
    report = verify_fails()
    assert "#3: missing (records 2 to 2 are absent)" in report
    assert "1 problem(s)" in report  # the record after the gap is not called edited too


def test_reordered_records_are_reported(conversation):
    first, second = (ConversationEvent.objects.get(sequence=n) for n in (2, 4))
    swap = "UPDATE voice_conversationevent SET sequence = %s WHERE id = %s"
    for sequence, pk in ((1000, first.pk), (2, second.pk), (4, first.pk)):
        as_superuser_without_triggers(swap, [sequence, pk])
    report = verify_fails()
    assert "reordered" in report and "edited" not in report


def test_records_removed_from_the_end_are_reported(conversation):
    last = ConversationEvent.objects.get(sequence=5)
    as_superuser_without_triggers("DELETE FROM voice_conversationevent WHERE id = %s", [last.pk])
    assert "it ended with 5 records, 4 are left" in verify_fails()


def test_koe_cannot_change_a_conversation_and_a_changed_one_is_reported(conversation):
    taro = get_user_model().objects.create_user("taro")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Conversation.objects.filter(pk=conversation.pk).update(user=taro)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM voice_conversation WHERE id = %s", [conversation.pk])
    # Moved to another employee behind Koe's back: the first link no longer matches.
    as_superuser_without_triggers(
        "UPDATE voice_conversation SET user_id = %s WHERE id = %s", [taro.pk, conversation.pk]
    )
    assert "#1: edited" in verify_fails()


def test_numbers_hash_the_same_after_the_database_stored_them():
    user = get_user_model().objects.create_user("emi")
    conversation = conversation_start(user=user, provider="local", model="koe-local")
    odd = {"zero": -0.0, "big": 1e16, "tiny": 1e-7, "third": 1 / 3, "whole": 2.0, "n": 2**40}
    conversation_events_append(
        conversation=conversation, events=[EventRecord(1, "latency", time.time(), odd)]
    )
    assert "the chains are intact" in verify()


def test_a_writer_that_knows_the_chain_head_does_not_read_it_back():
    from django.test.utils import CaptureQueriesContext

    from voice.selectors import conversation_chain_problems

    user = get_user_model().objects.create_user("ken")
    conversation = conversation_start(user=user, provider="local", model="koe-local")
    now = time.time()
    batches = [
        [EventRecord(n, "transcript", now + n, {"text": f"turn {n}"}) for n in (1, 2)],
        [EventRecord(n, "transcript", now + n, {"text": f"turn {n}"}) for n in (3, 4)],
    ]
    head = None
    for batch in batches:
        with CaptureQueriesContext(connection) as queries:
            head = conversation_events_append(conversation=conversation, events=batch, head=head)
        assert not any(q["sql"].lstrip().upper().startswith("SELECT") for q in queries)
    assert head is not None and head.sequence == 4
    # A writer that does not know it (after a restart) reads it, and the chain stays whole.
    conversation_events_append(
        conversation=conversation, events=[EventRecord(5, "ended", now + 5, {"reason": "x"})]
    )
    conversation_end(conversation=conversation, reason="client_closed")
    assert list(conversation_chain_problems()) == []
