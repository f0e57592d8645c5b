"""A conversation's records as people read them: turns in order with their times, what was cut
off, the tools the assistant used and the passages it was given, latency, tokens and cost."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from voice.models import ConversationEvent
from voice.pricing import Price, usage_cost


@dataclass
class Entry:
    at: datetime
    kind: str  # turn, segment, tool_call, tokens, rollover, error, ended
    sequence: int
    role: str = ""
    text: str = ""
    item_id: str = ""
    typed: bool = False
    heard_text: str | None = None  # set when the user interrupted this answer
    heard_ms: int | None = None
    # Set when the answer was cut off with its model session (why: upstream_dropped, ...).
    cut_off: str = ""
    latency_ms: int | None = None
    usage: dict[str, Any] | None = None
    cost: Decimal | None = None
    passages: list[dict[str, Any]] = field(default_factory=list)
    audio: dict[str, Any] | None = None  # the recording of the turn, if audio is recorded
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Timeline:
    entries: list[Entry]
    tokens: int
    cost: Decimal | None  # None when the model has no price
    price: Price | None = None  # the price it was costed at


def timeline_build(records: Iterable[ConversationEvent], *, price: Price | None) -> Timeline:
    """Fold a conversation's records (in sequence order) into its timeline."""
    entries: list[Entry] = []
    turns: dict[str, Entry] = {}
    pending: dict[str, dict[str, Any]] = {}  # facts about a turn that arrived before its words
    tokens = 0
    cost: Decimal | None = Decimal(0) if price is not None else None

    def about(item_id: str) -> dict[str, Any]:
        return pending.setdefault(item_id, {})

    def attach(item_id: str, **facts: Any) -> None:
        turn = turns.get(item_id)
        if turn is None:
            about(item_id).update(facts)
        else:
            for key, value in facts.items():
                setattr(turn, key, value)

    for record in records:
        data = record.data or {}
        kind = record.event_type
        if kind == "transcript":
            item_id = str(data.get("item_id") or "")
            entry = Entry(
                at=record.at,
                kind="turn",
                sequence=record.sequence,
                role=str(data.get("role") or ""),
                text=str(data.get("text") or ""),
                item_id=item_id,
                typed=bool(data.get("typed")),
                cut_off=str(data.get("cut_off") or ""),
            )
            for key, value in pending.pop(item_id, {}).items():
                setattr(entry, key, value)
            if item_id:
                turns[item_id] = entry
            entries.append(entry)
        elif kind == "truncated":
            attach(
                str(data.get("item_id") or ""),
                heard_ms=data.get("audio_end_ms"),
                heard_text=data.get("heard_text"),
            )
        elif kind == "latency":
            attach(str(data.get("item_id") or ""), latency_ms=data.get("ms"))
        elif kind == "audio":
            attach(str(data.get("item_id") or ""), audio={**data, "sequence": record.sequence})
        elif kind == "citations":
            attach(str(data.get("item_id") or ""), passages=list(data.get("passages") or []))
        elif kind == "usage":
            spent = int(data.get("input_tokens") or 0) + int(data.get("output_tokens") or 0)
            tokens += spent
            response_cost = usage_cost(data, price) if price is not None else None
            if cost is not None and response_cost is not None:
                cost += response_cost
            item_id = str(data.get("item_id") or "")
            if item_id:
                attach(item_id, usage=data, cost=response_cost)
            else:
                entries.append(
                    Entry(record.at, "tokens", record.sequence, usage=data, cost=response_cost)
                )
        elif kind == "tool_call":
            entries.append(Entry(record.at, "tool_call", record.sequence, detail=data))
        elif kind == "segment":
            # A meeting's words (minutes): the speaker's label and meeting time in `detail`.
            entries.append(
                Entry(
                    record.at,
                    "segment",
                    record.sequence,
                    text=str(data.get("text") or ""),
                    item_id=str(data.get("item_id") or ""),
                    detail=data,
                )
            )
        elif kind == "rollover":
            entries.append(Entry(record.at, "rollover", record.sequence, detail=data))
        elif kind == "upstream_error":
            entries.append(Entry(record.at, "error", record.sequence, detail=data))
        elif kind == "ended":
            entries.append(Entry(record.at, "ended", record.sequence, detail=data))
    return Timeline(entries=entries, tokens=tokens, cost=cost, price=price)
