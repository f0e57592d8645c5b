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
from collections import deque
from collections.abc import Callable, Sequence

from channels.db import database_sync_to_async
from django.db import DatabaseError, close_old_connections
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from voice.models import Conversation
from voice.realtime.session import Record
from voice.services import EventRecord, conversation_events_append

logger = logging.getLogger(__name__)

Append = Callable[..., int]


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
        self._sequence = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
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
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
            self._wake.clear()
            try:
                await self._flush(deadline_s=self._close_deadline if self._closing else None)
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

    async def _flush(self, *, deadline_s: float | None) -> None:
        while self._pending:
            batch = list(self._pending)[: self._batch_size]
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(DatabaseError),
                wait=wait_exponential(multiplier=0.05, max=self._retry_max_wait),
                stop=stop_after_delay(deadline_s) if deadline_s else _never,
                before_sleep=_log_retry,
                reraise=True,
            ):
                with attempt:
                    await self._write(batch)
            for _ in batch:
                self._pending.popleft()
            self.written += len(batch)

    @database_sync_to_async
    def _write(self, batch: Sequence[EventRecord]) -> None:
        try:
            append = self._append or conversation_events_append
            append(conversation=self._conversation, events=batch)
        except DatabaseError:
            # A broken connection must not be reused by the next attempt.
            close_old_connections()
            from django.db import connection

            connection.close()
            raise


def _never(retry_state: object) -> bool:
    return False


def _log_retry(retry_state: object) -> None:
    logger.warning("audit write failed, retrying: %s", getattr(retry_state, "outcome", None))
