"""From upstream Realtime events to the few events a browser needs.

Allowlist, not blocklist: an upstream event is forwarded only if it is translated here, so
session.created/updated (which echo the instructions and tools), function-call events and
anything new the provider adds never reach the browser. Item ids are Koe's own (`k_...`), mapped
to the upstream ids, so that they survive a session rollover and reveal nothing upstream.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from voice.realtime.browser_protocol import BYTES_PER_MS

Outgoing = dict[str, Any] | bytes


class Status(StrEnum):
    LISTENING = "listening"
    THINKING = "thinking"
    SEARCHING = "searching"
    SPEAKING = "speaking"
    # The model's connection dropped; a fresh session is opening (the conversation goes on).
    RECONNECTING = "reconnecting"


def status_event(status: Status) -> dict[str, Any]:
    return {"type": "status", "status": status.value}


@dataclass
class ItemIds:
    """Koe item ids <-> upstream item ids, for the life of a conversation (across rollovers)."""

    _to_upstream: dict[str, str] = field(default_factory=dict)
    _to_koe: dict[str, str] = field(default_factory=dict)

    def koe_id(self, upstream_id: str) -> str:
        if upstream_id not in self._to_koe:
            koe = "k_" + secrets.token_urlsafe(9)
            self._to_koe[upstream_id] = koe
            self._to_upstream[koe] = upstream_id
        return self._to_koe[upstream_id]

    def known_koe_id(self, upstream_id: str | None) -> str | None:
        return self._to_koe.get(upstream_id) if upstream_id else None

    def upstream_id(self, koe_id: str) -> str | None:
        return self._to_upstream.get(koe_id)

    def rebind(self, koe_id: str, upstream_id: str) -> None:
        """After a rollover the replayed item has a new upstream id but keeps its Koe id."""
        old = self._to_upstream.get(koe_id)
        if old is not None:
            self._to_koe.pop(old, None)
        self._to_upstream[koe_id] = upstream_id
        self._to_koe[upstream_id] = koe_id


@dataclass
class AudioLedger:
    """How much assistant audio each upstream item has sent, to clamp barge-in truncation."""

    _bytes: dict[str, int] = field(default_factory=dict)

    def received(self, upstream_item_id: str, nbytes: int) -> None:
        self._bytes[upstream_item_id] = self._bytes.get(upstream_item_id, 0) + nbytes

    def received_ms(self, upstream_item_id: str) -> int:
        return self._bytes.get(upstream_item_id, 0) // BYTES_PER_MS

    def audio_end_ms(self, upstream_item_id: str, played_ms: int) -> int | None:
        """The audio_end_ms to send upstream, or None when no audio was received (skip it)."""
        received = self.received_ms(upstream_item_id)
        if received <= 0:
            return None
        return max(0, min(played_ms, received))


@dataclass
class Downstream:
    ids: ItemIds = field(default_factory=ItemIds)
    ledger: AudioLedger = field(default_factory=AudioLedger)
    _audio_started: set[str] = field(default_factory=set)

    def translate(self, event: dict[str, Any]) -> list[Outgoing]:
        kind = event.get("type")
        handler = _HANDLERS.get(str(kind))
        return handler(self, event) if handler else []

    # -- user side ---------------------------------------------------------------------------
    def _speech_started(self, event: dict[str, Any]) -> list[Outgoing]:
        # The browser stops playback at once and answers with a truncate for what was heard.
        return [{"type": "speech.started"}, status_event(Status.LISTENING)]

    def _speech_stopped(self, event: dict[str, Any]) -> list[Outgoing]:
        return [status_event(Status.THINKING)]

    def _item_added(self, event: dict[str, Any]) -> list[Outgoing]:
        item = event.get("item") or {}
        if item.get("type") != "message" or item.get("role") not in ("user", "assistant"):
            return []  # function calls and their outputs stay on the server
        upstream_id = str(item.get("id") or "")
        if not upstream_id:
            return []
        koe_id = self.ids.koe_id(upstream_id)
        out: list[Outgoing] = [
            {
                "type": "item.created",
                "item_id": koe_id,
                "role": item["role"],
                "previous_item_id": self.ids.known_koe_id(event.get("previous_item_id")),
            }
        ]
        typed = " ".join(
            str(part.get("text") or "")
            for part in item.get("content") or []
            if isinstance(part, dict) and part.get("type") == "input_text"
        ).strip()
        if item["role"] == "user" and typed:
            # A typed question has no transcription: its words are its transcript. The page
            # matches them to the question it showed, whatever else happened meanwhile.
            out.append(
                {"type": "transcript.done", "role": "user", "item_id": koe_id, "text": typed}
            )
        return out

    def _user_delta(self, event: dict[str, Any]) -> list[Outgoing]:
        return [self._transcript("transcript.delta", "user", event, "delta")]

    def _user_done(self, event: dict[str, Any]) -> list[Outgoing]:
        return [self._transcript("transcript.done", "user", event, "transcript")]

    def _user_failed(self, event: dict[str, Any]) -> list[Outgoing]:
        return [
            {
                "type": "transcript.failed",
                "role": "user",
                "item_id": self.ids.koe_id(str(event.get("item_id") or "")),
            }
        ]

    # -- assistant side ----------------------------------------------------------------------
    def _response_created(self, event: dict[str, Any]) -> list[Outgoing]:
        return [status_event(Status.THINKING)]

    def _audio_delta(self, event: dict[str, Any]) -> list[Outgoing]:
        upstream_id = str(event.get("item_id") or "")
        try:
            pcm = base64.b64decode(event.get("delta") or "", validate=True)
        except (binascii.Error, ValueError):
            return []
        if not upstream_id or not pcm:
            return []
        self.ledger.received(upstream_id, len(pcm))
        out: list[Outgoing] = []
        if upstream_id not in self._audio_started:
            self._audio_started.add(upstream_id)
            out += [
                {"type": "audio.start", "item_id": self.ids.koe_id(upstream_id)},
                status_event(Status.SPEAKING),
            ]
        out.append(pcm)
        return out

    def _audio_done(self, event: dict[str, Any]) -> list[Outgoing]:
        upstream_id = str(event.get("item_id") or "")
        if upstream_id not in self._audio_started:
            return []
        return [{"type": "audio.done", "item_id": self.ids.koe_id(upstream_id)}]

    def _assistant_delta(self, event: dict[str, Any]) -> list[Outgoing]:
        return [self._transcript("transcript.delta", "assistant", event, "delta")]

    def _assistant_done(self, event: dict[str, Any]) -> list[Outgoing]:
        return [self._transcript("transcript.done", "assistant", event, "transcript")]

    def _response_done(self, event: dict[str, Any]) -> list[Outgoing]:
        response = event.get("response") or {}
        out: list[Outgoing] = []
        usage = response.get("usage")
        if isinstance(usage, dict):
            out.append({"type": "usage", "usage": usage_summary(usage)})
        calls_tools = any(
            isinstance(item, dict) and item.get("type") == "function_call"
            for item in response.get("output") or []
        )
        # With tool calls pending the turn goes on (searching); the session says when it ends.
        if not calls_tools:
            out.append(status_event(Status.LISTENING))
        return out

    def _transcript(self, kind: str, role: str, event: dict[str, Any], key: str) -> dict[str, Any]:
        text_key = "text" if kind == "transcript.done" else "delta"
        return {
            "type": kind,
            "role": role,
            "item_id": self.ids.koe_id(str(event.get("item_id") or "")),
            text_key: str(event.get(key) or ""),
        }


def usage_summary(usage: dict[str, Any]) -> dict[str, int]:
    """Token counts of a response, flattened (text/audio/cached input, text/audio output)."""
    inp = usage.get("input_token_details") or {}
    out = usage.get("output_token_details") or {}

    def n(value: Any) -> int:
        return int(value) if isinstance(value, int | float) else 0

    return {
        "input_tokens": n(usage.get("input_tokens")),
        "output_tokens": n(usage.get("output_tokens")),
        "input_text_tokens": n(inp.get("text_tokens")),
        "input_audio_tokens": n(inp.get("audio_tokens")),
        "input_cached_tokens": n(inp.get("cached_tokens")),
        "input_cached_text_tokens": n((inp.get("cached_tokens_details") or {}).get("text_tokens")),
        "input_cached_audio_tokens": n(
            (inp.get("cached_tokens_details") or {}).get("audio_tokens")
        ),
        "output_text_tokens": n(out.get("text_tokens")),
        "output_audio_tokens": n(out.get("audio_tokens")),
    }


_HANDLERS = {
    "input_audio_buffer.speech_started": Downstream._speech_started,
    "input_audio_buffer.speech_stopped": Downstream._speech_stopped,
    "conversation.item.added": Downstream._item_added,
    "conversation.item.input_audio_transcription.delta": Downstream._user_delta,
    "conversation.item.input_audio_transcription.completed": Downstream._user_done,
    "conversation.item.input_audio_transcription.failed": Downstream._user_failed,
    "response.created": Downstream._response_created,
    "response.output_audio.delta": Downstream._audio_delta,
    "response.output_audio.done": Downstream._audio_done,
    "response.output_audio_transcript.delta": Downstream._assistant_delta,
    "response.output_audio_transcript.done": Downstream._assistant_done,
    "response.done": Downstream._response_done,
}
