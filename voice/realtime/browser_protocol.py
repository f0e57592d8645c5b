"""Koe's browser protocol: the short allowlist of what a browser may send, and its limits.

Binary frames are audio (PCM16 mono 24 kHz little-endian). Text frames are JSON objects whose
`type` is one of the commands below; anything else is answered with an `error` event and the
socket stays open. docs/voice-protocol.md is the reference for browser authors.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from voice.realtime.policy import TurnMode

SAMPLE_RATE = 24_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # 48 bytes of PCM16 mono per millisecond

MAX_AUDIO_FRAME_BYTES = BYTES_PER_MS * 1000  # one second per frame at most (clients send 20-40 ms)
MAX_TEXT_FRAME_BYTES = 16 * 1024
MAX_TEXT_MESSAGE_CHARS = 4000
MIN_AUDIO_FRAME_BYTES = BYTES_PER_MS * 5  # 5 ms: smaller frames only multiply upstream events
MAX_AUDIO_FRAMES_PER_SECOND = 100

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class _Command(BaseModel):
    # Unknown fields are refused, not ignored: a browser cannot smuggle session settings in.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Commit(_Command):
    """Push-to-talk: the user let go; the buffered audio is a turn, answer it."""

    type: Literal["commit"]


class Clear(_Command):
    """Drop the audio buffered since the last commit."""

    type: Literal["clear"]


class Cancel(_Command):
    """Stop the answer being generated."""

    type: Literal["cancel"]


class Truncate(_Command):
    """Barge-in: the user interrupted; only `played_ms` of this item's audio was heard."""

    type: Literal["truncate"]
    item_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    played_ms: Annotated[int, Field(ge=0, le=3_600_000)]


class Text(_Command):
    """A typed question."""

    type: Literal["text"]
    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT_MESSAGE_CHARS)]

    @field_validator("text")
    @classmethod
    def _printable(cls, value: str) -> str:
        # Control characters (NUL above all) have no place in a question and cannot be stored.
        cleaned = _CONTROL.sub("", value).strip()
        if not cleaned:
            raise ValueError("the text is empty")
        return cleaned


class Mode(_Command):
    """Switch between hands-free (voice activity detection) and push-to-talk."""

    type: Literal["mode"]
    mode: TurnMode


BrowserCommand = Commit | Clear | Cancel | Truncate | Text | Mode
_commands: TypeAdapter[BrowserCommand] = TypeAdapter(
    Annotated[BrowserCommand, Field(discriminator="type")]
)
COMMAND_TYPES = ("commit", "clear", "cancel", "truncate", "text", "mode")


class Pause(_Command):
    """Meeting minutes: stop listening for now (what was said so far becomes a segment)."""

    type: Literal["pause"]


class Resume(_Command):
    type: Literal["resume"]


class Stop(_Command):
    """Meeting minutes: the meeting is over; finish the last segment, then close."""

    type: Literal["stop"]


MinutesCommand = Pause | Resume | Stop
_minutes_commands: TypeAdapter[MinutesCommand] = TypeAdapter(
    Annotated[MinutesCommand, Field(discriminator="type")]
)
MINUTES_COMMAND_TYPES = ("pause", "resume", "stop")


class ProtocolError(Exception):
    """A frame the browser should not have sent; becomes an `error` event, socket stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def event(self) -> dict[str, Any]:
        return error_event(self.code, self.message)


def error_event(code: str, message: str) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message}


def command_parse(text: str) -> BrowserCommand:
    """Parse one text frame of the voice socket into a command, or raise ProtocolError saying
    what is wrong."""
    return _parse(text, _commands, COMMAND_TYPES)


def minutes_command_parse(text: str) -> MinutesCommand:
    """Parse one text frame of the minutes socket (pause, resume, stop)."""
    return _parse(text, _minutes_commands, MINUTES_COMMAND_TYPES)


def _parse[C](text: str, adapter: TypeAdapter[C], types: tuple[str, ...]) -> C:
    if len(text.encode()) > MAX_TEXT_FRAME_BYTES:
        raise ProtocolError(
            "frame_too_large", f"text frames are limited to {MAX_TEXT_FRAME_BYTES} bytes"
        )
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raise ProtocolError("invalid_json", "text frames must be JSON objects") from None
    if not isinstance(raw, dict):
        raise ProtocolError("invalid_json", "text frames must be JSON objects")
    kind = raw.get("type")
    if kind not in types:
        raise ProtocolError(
            "unknown_type",
            f"unknown message type {str(kind)[:40]!r}; allowed: {', '.join(types)}",
        )
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "message"
        raise ProtocolError("invalid_message", f"{kind}: {where}: {first['msg']}") from None


def audio_frame_check(frame: bytes) -> None:
    """Refuse audio frames that cannot be PCM16 or are absurdly large."""
    if len(frame) < MIN_AUDIO_FRAME_BYTES:
        raise ProtocolError(
            "invalid_audio", f"audio frames carry at least 5 ms ({MIN_AUDIO_FRAME_BYTES} bytes)"
        )
    if len(frame) > MAX_AUDIO_FRAME_BYTES:
        raise ProtocolError(
            "frame_too_large", f"audio frames are limited to {MAX_AUDIO_FRAME_BYTES} bytes"
        )
    if len(frame) % 2:
        raise ProtocolError("invalid_audio", "PCM16 audio frames have an even number of bytes")


@dataclass
class TokenBucket:
    """Allows `rate` units per second with bursts up to `burst`; refuses what exceeds it."""

    rate: float
    burst: float
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self._level = self.burst
        self._at = self.clock()

    def take(self, amount: float) -> bool:
        now = self.clock()
        self._level = min(self.burst, self._level + (now - self._at) * self.rate)
        self._at = now
        if amount > self._level:
            return False
        self._level -= amount
        return True


@dataclass
class InboundLimits:
    """Per-socket rate limits: audio a little faster than real time, a few commands a second."""

    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        # Real time is 48,000 bytes/s; allow 1.5x with a 2-second burst for network jitter.
        self.audio = TokenBucket(
            rate=BYTES_PER_MS * 1500, burst=BYTES_PER_MS * 2000, clock=self.clock
        )
        self.commands = TokenBucket(rate=10, burst=20, clock=self.clock)
        self.audio_frames = TokenBucket(
            rate=MAX_AUDIO_FRAMES_PER_SECOND, burst=MAX_AUDIO_FRAMES_PER_SECOND, clock=self.clock
        )

    def audio_allowed(self, nbytes: int) -> None:
        if not self.audio_frames.take(1):
            raise ProtocolError("rate_limited", "too many audio frames; send 20-40 ms each")
        if not self.audio.take(nbytes):
            raise ProtocolError("rate_limited", "audio is arriving faster than real time")

    def command_allowed(self) -> None:
        if not self.commands.take(1):
            raise ProtocolError("rate_limited", "too many messages; at most 10 a second")
