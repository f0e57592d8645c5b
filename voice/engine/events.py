"""Shapes of the Realtime GA server events the engine sends, and its session defaults."""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

MODEL = "koe-local"
PCM = {"type": "audio/pcm", "rate": 24000}


def new_id(prefix: str) -> str:
    """Ids in the service's style (`item_…`, `resp_…`, `call_…`, `event_…`)."""
    return f"{prefix}_{secrets.token_hex(10)}"


def server_vad_defaults() -> dict[str, Any]:
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "create_response": True,
        "interrupt_response": True,
        "idle_timeout_ms": None,
    }


def session_defaults(kind: str, *, max_seconds: float) -> dict[str, Any]:
    """The full effective session the engine starts with (and answers session.update with)."""
    audio_input: dict[str, Any] = {
        "format": dict(PCM),
        "transcription": None,
        "noise_reduction": None,
        "turn_detection": server_vad_defaults(),
    }
    common = {"id": new_id("sess"), "expires_at": int(time.time() + max_seconds)}
    if kind == "transcription":
        audio_input["transcription"] = {"model": "whisper-tiny.en", "language": "en"}
        return {
            **common,
            "type": "transcription",
            "object": "realtime.transcription_session",
            "audio": {"input": audio_input},
            "include": [],
        }
    return {
        **common,
        "type": "realtime",
        "object": "realtime.session",
        "model": MODEL,
        "output_modalities": ["audio"],
        "instructions": "",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "include": None,
        "audio": {
            "input": audio_input,
            "output": {"format": dict(PCM), "voice": "alloy", "speed": 1.0},
        },
    }


def merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`base` with `update` laid over it, nested objects merged key by key."""
    result = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def error_event(
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    client_event_id: str | None = None,
    kind: str = "invalid_request_error",
) -> dict[str, Any]:
    """An `error` event shaped like the service's."""
    return {
        "type": "error",
        "error": {
            "type": kind,
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id,
        },
    }


def estimate_tokens(text: str) -> int:
    """Text tokens, estimated: about four characters per token (and at least one per word)."""
    return max(len(text.split()), (len(text) + 3) // 4) if text else 0


def audio_tokens(ms: int, *, per_token_ms: int) -> int:
    """Audio tokens, estimated as the service bills them: user audio about one token per
    100 ms, assistant audio one per 50 ms."""
    return (ms + per_token_ms - 1) // per_token_ms
