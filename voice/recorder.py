"""Audit records leave the audio path at once and reach the database in batches, with retries.

`record()` never waits: it puts the record on a bounded in-memory queue. A background task
writes batches; when the database is briefly unavailable the batch is retried with backoff and
nothing is lost, and on a normal close everything pending is written before the socket's
handler returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence

from channels.db import database_sync_to_async
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
)
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from voice.models import Conversation
from voice.realtime.session import Record
from voice.services import ChainHead, EventRecord, conversation_events_append

logger = logging.getLogger(__name__)

Append = Callable[..., object]


class ConversationRecorder:
    def __init__(
        self,
        *,
        conversation: Conversation,
        append: Append | None = None,
        batch_size: int = 100,
        flush_interval_s: float = 0.25,
        max_pending: int = 20_000,
        retry_max_wait_s: float = 2.0,
        close_deadline_s: float = 30.0,
    ) -> None:
        self._conversation = conversation
        self._append = append
        self._batch_size = batch_size
        self._interval = flush_interval_s
        self._max_pending = max_pending
        self._retry_max_wait = retry_max_wait_s
        self._close_deadline = close_deadline_s
        self._pending: deque[EventRecord] = deque()
        self._head: ChainHead | None = None
        self._sequence = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closing_since = 0.0
        self.dropped = 0
        self.written = 0

    def record(self, record: Record) -> None:
        """Queue one record; never blocks."""
        if len(self._pending) >= self._max_pending:
            # Only after a very long outage: keep the newest, count what was lost, say so loudly.
            self._pending.popleft()
            self.dropped += 1
            logger.error("audit queue full for conversation %s", self._conversation.pk)
        self._sequence += 1
        self._pending.append(
            EventRecord(
                sequence=self._sequence,
                event_type=record.kind,
                at=record.at,
                data=record.data,
                subject=str(record.data.get("item_id") or ""),
            )
        )
        if len(self._pending) >= self._batch_size:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Write everything still pending (retrying within the close deadline), then stop."""
        self._closing = True
        self._closing_since = time.monotonic()
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            try:
                await self._flush()
            except DatabaseError:
                logger.exception(
                    "audit records of conversation %s could not be written: %d lost",
                    self._conversation.pk,
                    len(self._pending),
                )
                self.dropped += len(self._pending)
                self._pending.clear()
            if self._closing and not self._pending:
                return

    def _give_up(self, retry_state: object) -> bool:
        # While the socket is open an outage is waited out; once it closes, only so long.
        return self._closing and time.monotonic() - self._closing_since > self._close_deadline

    async def _flush(self) -> None:
        while self._pending:
            batch = list(self._pending)[: self._batch_size]
            async for attempt in AsyncRetrying(
                # Only transient failures are retried; bad data would fail forever.
                retry=retry_if_exception_type((OperationalError, InterfaceError)),
                wait=wait_exponential(multiplier=0.05, max=self._retry_max_wait),
                stop=self._give_up,
                before_sleep=_log_retry,
                reraise=True,
            ):
                with attempt:
                    await self._write(batch)
            # Remove exactly the records written, even if the queue overflowed meanwhile.
            written = {e.sequence for e in batch}
            self._pending = deque(e for e in self._pending if e.sequence not in written)
            self.written += len(batch)

    def _write_one_by_one(self, append: Append, batch: Sequence[EventRecord]) -> None:
        for record in batch:
            try:
                head = append(conversation=self._conversation, events=[record], head=self._head)
            except (DataError, IntegrityError):
                logger.error("audit record %s could not be stored as sent", record.sequence)
                head = append(
                    conversation=self._conversation, events=[_unstorable(record)], head=self._head
                )
            self._advance(head)

    def _advance(self, head: object) -> None:
        # The last hash written saves reading it back before the next batch.
        self._head = head if isinstance(head, ChainHead) else None

    async def _write(self, batch: Sequence[EventRecord]) -> None:
        # Not thread-sensitive: a retrying recorder must not hold up every other socket's
        # database work in this process, which shares the one thread-sensitive thread.
        await database_sync_to_async(self._write_now, thread_sensitive=False)(batch)

    def _write_now(self, batch: Sequence[EventRecord]) -> None:
        append = self._append or conversation_events_append
        try:
            self._advance(append(conversation=self._conversation, events=batch, head=self._head))
        except (DataError, IntegrityError):
            # Some record cannot be stored as it is: store the others one by one and keep the
            # bad one as a marker, so that one odd value never costs the whole trail.
            self._write_one_by_one(append, batch)
        except DatabaseError:
            # A broken connection must not be reused by the next attempt.
            close_old_connections()
            from django.db import connection

            connection.close()
            raise


def _log_retry(retry_state: object) -> None:
    logger.warning("audit write failed, retrying: %s", getattr(retry_state, "outcome", None))


def _unstorable(record: EventRecord) -> EventRecord:
    return EventRecord(
        sequence=record.sequence,
        event_type=record.event_type,
        at=record.at,
        data={"unstorable": repr(record.data)[:2000].replace("\x00", "")},
        subject=record.subject.replace("\x00", ""),
    )
