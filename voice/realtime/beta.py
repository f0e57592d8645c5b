"""Azure's deprecated preview API speaks the beta Realtime protocol: translate at the edge.

The rest of Koe speaks GA only. This wrapper turns Koe's GA client events into their beta
shape and the service's beta events into GA names, for the few differences Koe depends on.
"""

from __future__ import annotations

import json
from typing import Any

from voice.realtime.session import Upstream

# Beta server event names -> GA names.
_BETA_TO_GA = {
    "conversation.item.created": "conversation.item.added",
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
}


def session_to_beta(session: dict[str, Any]) -> dict[str, Any]:
    """A GA `session` object in the flat beta layout."""
    audio = session.get("audio") or {}
    audio_in = audio.get("input") or {}
    audio_out = audio.get("output") or {}
    beta: dict[str, Any] = {}
    if "output_modalities" in session:
        # Beta has no audio-only mode: audio always comes with its text.
        beta["modalities"] = ["audio", "text"]
    if "instructions" in session:
        beta["instructions"] = session["instructions"]
    if "format" in audio_in:
        beta["input_audio_format"] = "pcm16"
    if "transcription" in audio_in:
        beta["input_audio_transcription"] = audio_in["transcription"]
    if "turn_detection" in audio_in:
        beta["turn_detection"] = audio_in["turn_detection"]
    if "format" in audio_out:
        beta["output_audio_format"] = "pcm16"
    if "voice" in audio_out:
        beta["voice"] = audio_out["voice"]
    for key in ("tools", "tool_choice"):
        if key in session:
            beta[key] = session[key]
    if "max_output_tokens" in session:
        beta["max_response_output_tokens"] = session["max_output_tokens"]
    return beta


def client_event_to_beta(event: dict[str, Any]) -> dict[str, Any]:
    kind = event.get("type")
    if kind == "session.update":
        return {**event, "session": session_to_beta(event.get("session") or {})}
    if kind == "conversation.item.create":
        item = event.get("item") or {}
        content = [
            {**part, "type": "text"} if part.get("type") == "output_text" else part
            for part in item.get("content") or []
        ]
        if content:
            return {**event, "item": {**item, "content": content}}
    return event


def server_event_to_ga(event: dict[str, Any]) -> dict[str, Any]:
    kind = str(event.get("type"))
    if kind in _BETA_TO_GA:
        return {**event, "type": _BETA_TO_GA[kind]}
    return event


class BetaUpstream:
    """Wraps a beta-protocol connection so that the session sees GA."""

    def __init__(self, inner: Upstream) -> None:
        self._inner = inner

    async def send(self, message: str) -> None:
        await self._inner.send(json.dumps(client_event_to_beta(json.loads(message))))

    async def recv(self) -> str | bytes:
        raw = await self._inner.recv()
        if isinstance(raw, bytes):
            return raw
        event = json.loads(raw)
        return json.dumps(server_event_to_ga(event)) if isinstance(event, dict) else raw

    async def close(self) -> None:
        await self._inner.close()
