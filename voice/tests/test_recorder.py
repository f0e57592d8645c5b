"""Audit records survive a database outage and are all written on a normal close."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import OperationalError

from voice.models import ConversationEvent
from voice.realtime.session import Record
from voice.recorder import ConversationRecorder
from voice.services import conversation_events_append, conversation_start

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def make_conversation():
    user = get_user_model().objects.create_user("emi")
    return conversation_start(user=user, provider="local", model="fake")


@database_sync_to_async
def stored(conversation):
    return list(
        ConversationEvent.objects.filter(conversation=conversation).values_list(
            "sequence", "event_type", "subject", "data"
        )
    )


class FlakyDatabase:
    """The real append, failing like a restarting database for the first `failures` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError("server closed the connection unexpectedly")
        return conversation_events_append(**kwargs)


async def test_records_are_batched_in_order():
    conversation = await make_conversation()
    recorder = ConversationRecorder(conversation=conversation, batch_size=3, flush_interval_s=0.01)
    recorder.start()
    for i in range(7):
        recorder.record(Record("transcript", {"item_id": f"k_{i}", "role": "user", "text": str(i)}))
    await recorder.close()
    rows = await stored(conversation)
    assert [r[0] for r in rows] == list(range(1, 8))
    assert rows[0][1:] == ("transcript", "k_0", {"item_id": "k_0", "role": "user", "text": "0"})
    assert recorder.written == 7 and recorder.dropped == 0


async def test_a_database_outage_loses_nothing():
    conversation = await make_conversation()
    flaky = FlakyDatabase(failures=4)
    recorder = ConversationRecorder(
        conversation=conversation,
        append=flaky,
        batch_size=5,
        flush_interval_s=0.01,
        retry_max_wait_s=0.05,
    )
    recorder.start()
    for i in range(12):
        recorder.record(Record("usage", {"input_tokens": i}))
    await recorder.close()
    rows = await stored(conversation)
    assert [r[3]["input_tokens"] for r in rows] == list(range(12))
    assert flaky.calls > 4


async def test_a_retried_batch_that_had_committed_adds_no_duplicates():
    conversation = await make_conversation()

    class CommitThenFail:
        calls = 0

        def __call__(self, **kwargs):
            self.calls += 1
            conversation_events_append(**kwargs)
            if self.calls == 1:
                raise OperationalError("connection lost after commit")

    recorder = ConversationRecorder(
        conversation=conversation,
        append=CommitThenFail(),
        flush_interval_s=0.01,
        retry_max_wait_s=0.01,
    )
    recorder.start()
    for i in range(3):
        recorder.record(Record("latency", {"ms": i}))
    await recorder.close()
    assert [r[0] for r in await stored(conversation)] == [1, 2, 3]


async def test_a_record_postgres_cannot_store_does_not_cost_the_others():
    conversation = await make_conversation()
    recorder = ConversationRecorder(conversation=conversation, flush_interval_s=0.01)
    recorder.start()
    recorder.record(Record("transcript", {"item_id": "k_1", "text": "before"}))
    recorder.record(Record("transcript", {"item_id": "k_2", "text": "nul \x00 inside"}))
    recorder.record(Record("transcript", {"item_id": "k_3", "text": "after"}))
    await asyncio.wait_for(recorder.close(), 10)
    rows = await stored(conversation)
    assert [r[0] for r in rows] == [1, 2, 3]
    assert rows[0][3]["text"] == "before" and rows[2][3]["text"] == "after"
    assert "unstorable" in rows[1][3] and "\x00" not in rows[1][3]["unstorable"]


async def test_close_gives_up_after_its_deadline_when_the_database_stays_down():
    conversation = await make_conversation()
    recorder = ConversationRecorder(
        conversation=conversation,
        append=FlakyDatabase(failures=10**9),
        flush_interval_s=0.01,
        retry_max_wait_s=0.05,
        close_deadline_s=0.5,
    )
    recorder.start()
    recorder.record(Record("usage", {"input_tokens": 1}))
    await asyncio.wait_for(recorder.close(), 10)
    assert recorder.dropped == 1 and recorder.written == 0
