"""The server's policy for a model session: what Koe tells the model, never the browser."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

DEFAULT_INSTRUCTIONS = (
    "You are Koe, the voice assistant of this company. Answer briefly, in the language the "
    "user speaks. For any question about the company, its rules, products or documents, call "
    "the search_knowledge tool first and answer only from what it returns, naming the "
    "document. If the documents do not answer the question, say that you do not know; never "
    "invent company facts."
)


class TurnMode(StrEnum):
    HANDS_FREE = "hands_free"  # the model's voice activity detection ends turns
    PUSH_TO_TALK = "push_to_talk"  # the browser commits the audio and asks for a response


class VadKind(StrEnum):
    SERVER = "server_vad"
    SEMANTIC = "semantic_vad"


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]

    def as_realtime(self) -> dict[str, Any]:
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }


SEARCH_KNOWLEDGE = ToolSpec(
    name="search_knowledge",
    description=(
        "Search the company's documents the current user may read. Returns passages with "
        "their document titles. Use it for every question about the company."
    ),
    parameters={
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "The question or keywords, in the user's language.",
            }
        },
        "required": ["query"],
        "additionalProperties": False,
    },
)


@dataclass(frozen=True)
class SessionPolicy:
    instructions: str = DEFAULT_INSTRUCTIONS
    voice: str = "alloy"
    transcription_model: str = "gpt-4o-mini-transcribe"
    # ISO-639-1 hint for input transcription ("ja", "en"); None lets the model detect it.
    transcription_language: str | None = None
    vad: VadKind = VadKind.SERVER
    vad_threshold: float = 0.5
    vad_prefix_padding_ms: int = 300
    vad_silence_duration_ms: int = 500
    semantic_eagerness: str = "auto"
    tools: tuple[ToolSpec, ...] = field(default=(SEARCH_KNOWLEDGE,))
    max_output_tokens: int | None = 1024

    def tool_names(self) -> frozenset[str]:
        return frozenset(tool.name for tool in self.tools)


def turn_detection(policy: SessionPolicy, mode: TurnMode) -> dict[str, Any] | None:
    """The GA turn_detection object; None (push-to-talk) means manual commit and response."""
    if mode == TurnMode.PUSH_TO_TALK:
        return None
    if policy.vad == VadKind.SEMANTIC:
        return {
            "type": "semantic_vad",
            "eagerness": policy.semantic_eagerness,
            "create_response": True,
            "interrupt_response": True,
        }
    return {
        "type": "server_vad",
        "threshold": policy.vad_threshold,
        "prefix_padding_ms": policy.vad_prefix_padding_ms,
        "silence_duration_ms": policy.vad_silence_duration_ms,
        "create_response": True,
        "interrupt_response": True,
    }


def session_update_event(policy: SessionPolicy, mode: TurnMode) -> dict[str, Any]:
    """The complete GA `session.update` Koe sends at the start of every upstream session."""
    transcription: dict[str, Any] = {"model": policy.transcription_model}
    if policy.transcription_language:
        transcription["language"] = policy.transcription_language
    session: dict[str, Any] = {
        "type": "realtime",
        "output_modalities": ["audio"],
        "instructions": policy.instructions,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "transcription": transcription,
                "turn_detection": turn_detection(policy, mode),
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": policy.voice},
        },
        "tools": [tool.as_realtime() for tool in policy.tools],
        "tool_choice": "auto" if policy.tools else "none",
        "max_output_tokens": policy.max_output_tokens
        if policy.max_output_tokens is not None
        else "inf",
    }
    return {"type": "session.update", "session": session}


def turn_mode_update_event(policy: SessionPolicy, mode: TurnMode) -> dict[str, Any]:
    """A `session.update` that changes only the turn detection (hands-free <-> push-to-talk)."""
    return {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {"input": {"turn_detection": turn_detection(policy, mode)}},
        },
    }
