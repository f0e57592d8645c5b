"""The hash chain over each conversation's audit events: tampering shows.

Each event's hash covers its own content and the hash of the event before it in the same
conversation (the first one chains to a hash of the conversation's public id), so editing,
deleting or reordering any row breaks the chain from there on. Chains are per conversation
because conversations are written in parallel; a global chain would serialise every socket's
writes. `manage.py audit_verify` walks them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class ConversationHeader:
    """What a conversation is: whose, when, with which model. The first link of its chain
    covers it, so moving a conversation to another user or another day shows too."""

    public_id: str
    user_id: int
    started_at: datetime
    provider: str
    model: str

    @classmethod
    def of(cls, conversation: Any) -> ConversationHeader:
        """The header of a stored conversation (anything with its fields)."""
        return cls(
            public_id=str(conversation.public_id),
            user_id=conversation.user_id,
            started_at=conversation.started_at,
            provider=conversation.provider,
            model=conversation.model,
        )


def genesis_hash(*, header: ConversationHeader) -> str:
    """What the first record of a conversation chains to."""
    return chained_hash(
        previous="koe-conversation",
        content={
            "conversation": header.public_id,
            "user": header.user_id,
            "started_at": header.started_at.isoformat(timespec="microseconds"),
            "provider": header.provider,
            "model": header.model,
        },
    )


def chained_hash(*, previous: str, content: dict[str, Any]) -> str:
    """SHA-256 of the previous hash and the content's canonical JSON (keys sorted, compact,
    Unicode kept): the link of every hash chain Koe keeps."""
    canonical = json.dumps(
        _normalised(content), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(f"{previous}\n{canonical}".encode()).hexdigest()


def _normalised(value: Any) -> Any:
    """The value as JSONB gives it back, for numbers: PostgreSQL keeps numbers as numeric, so
    -0.0 comes back as 0 and 1e16 as 10000000000000000; integral floats are hashed as ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalised(v) for v in value]
    return value


def event_hash(
    *,
    previous: str,
    conversation_public_id: str,
    sequence: int,
    event_type: str,
    subject: str,
    at: datetime,
    actor_id: int,
    data: dict[str, Any],
) -> str:
    """The chain hash of one conversation record (times in UTC, to the microsecond)."""
    return chained_hash(
        previous=previous,
        content={
            "conversation": conversation_public_id,
            "sequence": sequence,
            "event_type": event_type,
            "subject": subject,
            "at": at.isoformat(timespec="microseconds"),
            "actor": actor_id,
            "data": data,
        },
    )


@dataclass(frozen=True)
class ChainProblem:
    conversation_public_id: str
    sequence: int
    kind: str  # "edited", "missing", "reordered", "unchained"
    detail: str

    def __str__(self) -> str:
        where = f"conversation {self.conversation_public_id} #{self.sequence}"
        return f"{where}: {self.kind} ({self.detail})"


@dataclass(frozen=True)
class StoredEvent:
    sequence: int
    event_type: str
    subject: str
    at: datetime
    actor_id: int
    data: dict[str, Any]
    chain_hash: str

    def expected_hash(self, *, previous: str, public_id: str, sequence: int | None = None) -> str:
        return event_hash(
            previous=previous,
            conversation_public_id=public_id,
            sequence=self.sequence if sequence is None else sequence,
            event_type=self.event_type,
            subject=self.subject,
            at=self.at,
            actor_id=self.actor_id,
            data=self.data,
        )


def chain_problems(
    *,
    header: ConversationHeader,
    events: Iterable[StoredEvent],
    final: tuple[int, str] | None = None,
) -> list[ChainProblem]:
    """Every break in one conversation's chain, given its events in stored row order and, for
    an ended conversation, the (record count, last hash) it ended with."""
    public_id = header.public_id
    problems: list[ChainProblem] = []
    rows = list(events)
    by_sequence = sorted(rows, key=lambda e: e.sequence)
    if rows != by_sequence:
        first = next(a for a, b in zip(rows, by_sequence, strict=True) if a is not b)
        problems.append(
            ChainProblem(public_id, first.sequence, "reordered", "rows out of sequence order")
        )
    genesis = genesis_hash(header=header)
    previous = genesis
    expected_sequence = 1
    for event in by_sequence:
        gap = event.sequence != expected_sequence
        if gap:
            absent = f"records {expected_sequence} to {event.sequence - 1} are absent"
            problems.append(ChainProblem(public_id, event.sequence, "missing", absent))
        if event.expected_hash(previous=previous, public_id=public_id) != event.chain_hash:
            if gap and event.chain_hash:
                # It chains to the record that is gone (its hash is unknown): already reported
                # as missing; the records after it check its own place.
                previous = event.chain_hash
                expected_sequence = event.sequence + 1
                continue
            if not event.chain_hash:
                kind, detail = "unchained", "written without a hash"
            elif _moved(event, public_id, rows, genesis):
                kind, detail = "reordered", "intact, but its sequence number was changed"
            else:
                kind, detail = "edited", "its content does not match its hash"
            problems.append(ChainProblem(public_id, event.sequence, kind, detail))
        previous = event.chain_hash
        expected_sequence = event.sequence + 1
    if final is not None:
        count, head = final
        last = by_sequence[-1] if by_sequence else None
        if last is None or last.sequence < count or last.chain_hash != head:
            problems.append(
                ChainProblem(
                    public_id,
                    count,
                    "missing",
                    f"it ended with {count} records, {len(by_sequence)} are left",
                )
            )
    return problems


# Beyond this many rows a broken link is reported as edited without looking for where it came
# from (the search below is quadratic).
MOVED_SEARCH_LIMIT = 300


def _moved(event: StoredEvent, public_id: str, rows: list[StoredEvent], genesis: str) -> bool:
    """The event's content is intact but it was chained at another place: after another row
    (or first), with another sequence number. Such a row was moved, not edited."""
    if len(rows) > MOVED_SEARCH_LIMIT:
        return False
    previous_hashes = {genesis}
    previous_hashes |= {other.chain_hash for other in rows}
    sequences = {1} | {other.sequence for other in rows} | {other.sequence + 1 for other in rows}
    return any(
        event.expected_hash(previous=previous, public_id=public_id, sequence=sequence)
        == event.chain_hash
        for previous in previous_hashes
        for sequence in sequences
    )
