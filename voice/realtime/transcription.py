"""A transcription-only model session for meeting minutes (GA `session.type: transcription`).

The server owns it as it owns a conversation: it sets the transcription model, the language and
turn detection; the browser sends only audio, pause and resume. The model's turn detection cuts
the meeting into segments at pauses, and each segment is timed in the meeting, whose clock runs
on across model sessions: a meeting of hours outlives the providers' 30 or 60 minute limit, and
a fresh session takes over with no gap. The audio of every segment not yet transcribed (and of
the speech still going on) is sent to it again, and audio that arrives meanwhile is held.
Plain asyncio, no Django.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from voice.realtime.browser_protocol import BYTES_PER_MS, error_event
from voice.realtime.session import Connector, ReconnectGate, Upstream, upstream_open

logger = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Segment:
    """One stretch of speech between pauses, timed in the meeting (ms from its start)."""

    segment_id: str
    start_ms: int
    end_ms: int
    text: str
    speaker: str = ""  # the provider's label, where it gives diarization
    failed: bool = False  # the model could not transcribe it (kept, so the gap shows)


SegmentSink = Callable[[Segment], None]
# Called with the reason whenever a fresh model session takes over (for the audit trail).
RolloverSink = Callable[[str], None]


@dataclass
class TranscriptionSettings:
    model: str = "gpt-4o-mini-transcribe"
    language: str = ""  # empty: the model detects it
    max_session_seconds: float = 30 * 60
    rollover_margin_s: float = 60.0
    connect_attempts: int = 3
    connect_backoff_s: float = 0.5
    handshake_timeout_s: float = 10.0
    # Audio kept for a fresh session: everything not yet transcribed, but at most this much.
    resend_ms: int = 60_000
    # Audio that arrives while a fresh session opens (beyond it the oldest is dropped).
    hold_ms: int = 120_000
    silence_duration_ms: int = 700


def transcription_session_update(settings: TranscriptionSettings) -> dict[str, Any]:
    """The server's settings of a transcription session, as one GA `session.update`."""
    transcription: dict[str, Any] = {"model": settings.model}
    if settings.language:
        transcription["language"] = settings.language
    return {
        "type": "session.update",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": transcription,
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.5,
                        "prefix_padding_ms": 300,
                        "silence_duration_ms": settings.silence_duration_ms,
                    },
                }
            },
        },
    }


class SettingsRefused(ConnectionError):
    """The model refused Koe's settings (a language it cannot transcribe, say): retrying or
    opening another session would not help."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class _Pending:
    """A segment the model has heard but not yet transcribed (times in the model session)."""

    segment_id: str
    start_ms: int
    end_ms: int | None = None
    announced: bool = False  # the page was shown words of it


class TranscriptionSession:
    def __init__(
        self,
        *,
        connect: Connector,
        settings: TranscriptionSettings,
        emit: Emit,
        segment: SegmentSink,
        rollover: RolloverSink | None = None,
        reconnect_gate: ReconnectGate | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gate = reconnect_gate
        self._connect = connect
        self._settings = settings
        self._emit = emit
        self._segment = segment
        self._rollover = rollover
        self._clock = clock
        self._upstream: Upstream | None = None
        self._ready = asyncio.Event()
        self._closing = False
        self.end_reason = ""
        self.sessions = 0
        self._opened_at = 0.0
        # The meeting clock: meeting ms at which the current model session's audio began.
        self._offset_ms = 0
        self._sent_ms = 0  # audio sent to the current model session
        # The current session's audio that a fresh one would need: (session ms, pcm).
        self._kept: deque[tuple[int, bytes]] = deque()
        self._kept_from_ms = 0  # audio before this (session ms) is transcribed or silence
        self._held: deque[bytes] = deque()
        self._held_ms = 0
        self.dropped_ms = 0  # audio lost because a fresh session took too long to open
        self._pending: dict[str, _Pending] = {}  # by the model's item id
        self._counter = 0
        self._stored: deque[tuple[int, int]] = deque(maxlen=64)  # recent segments, meeting ms
        self._paused = False
        self._commit_asked = False  # a pause asked the model to commit; not yet done
        self._settled = asyncio.Event()  # nothing heard is waiting for its words

    # -- lifecycle -------------------------------------------------------------------------------
    async def run(self) -> None:
        try:
            reason = "start"
            while not self._closing:
                await self._open(reason)
                if self._closing:
                    break
                reason = await self._pump()
        except SettingsRefused as exc:
            self.end_reason = self.end_reason or "settings_refused"
            await self._emit(error_event("transcription_refused", exc.message))
        except ConnectionError:
            self.end_reason = self.end_reason or "upstream_unavailable"
            await self._emit(
                error_event("upstream_unavailable", "Transcription is unavailable right now.")
            )
        finally:
            if self._upstream is not None:
                with contextlib.suppress(Exception):
                    await self._upstream.close()

    async def wait_ready(self, *, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=timeout_s)
        return self._ready.is_set()

    async def close(self, reason: str = "client_closed", *, drain_s: float = 0.0) -> None:
        """Stop; with `drain_s`, first let the model finish the segments it has heard (a fresh
        session still opening gets part of that time to take over the audio)."""
        if self._closing:
            return
        if drain_s > 0:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + drain_s
            if not self._ready.is_set():
                await self.wait_ready(timeout_s=drain_s / 2)
            if self._ready.is_set() and not self._closing:
                await self.pause()
                if self._pending or self._commit_asked:
                    self._settled.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._settled.wait(), timeout=max(0.0, deadline - loop.time())
                        )
        self.end_reason = self.end_reason or reason
        self._closing = True
        self._ready.set()  # nobody waits for a session that will not come
        if self._upstream is not None:
            with contextlib.suppress(Exception):
                await self._upstream.close()

    async def _open(self, reason: str) -> None:
        self._ready.clear()
        while self.sessions and self._gate is not None and not self._closing:
            wait = await self._gate()  # fresh sessions count against the shared rate
            if wait <= 0:
                break
            await asyncio.sleep(min(wait, 5.0))
        upstream = await upstream_open(
            self._connect,
            self._handshake,
            attempts=self._settings.connect_attempts,
            backoff_s=self._settings.connect_backoff_s,
            closing=lambda: self._closing,
            final=(SettingsRefused,),
        )
        if upstream is not None:
            await self._take_over(upstream, reason)

    async def _take_over(self, upstream: Upstream, reason: str) -> None:
        resend = [pcm for _, pcm in self._kept]
        if self.sessions:
            # The fresh session's time zero is where the first resent byte sits in the meeting.
            first = self._kept[0][0] if self._kept else self._sent_ms
            self._offset_ms += first
            abandoned = [p for p in self._pending.values() if p.announced]
            for pending in abandoned:
                # Its audio is resent: the fresh session transcribes it again, under a new id.
                await self._emit({"type": "segment.discarded", "segment_id": pending.segment_id})
            if self._rollover is not None:
                self._rollover(reason)
            await self._emit({"type": "notice", "notice": "reconnected", "reason": reason})
        self._upstream = upstream
        self.sessions += 1
        self._opened_at = self._clock()
        self._pending.clear()
        self._commit_asked = False
        self._kept.clear()
        self._kept_from_ms = 0
        self._sent_ms = 0
        for pcm in resend:
            await self._send_audio(pcm)
        # Frames keep arriving (and are held) while these sends wait on the socket: no await
        # between the last look at the held audio and ready, or some would be stranded.
        while self._held:
            pcm = self._held.popleft()
            self._held_ms -= _ms(pcm)
            await self._send_audio(pcm)
        self._ready.set()
        await self._emit({"type": "status", "status": "paused" if self._paused else "listening"})

    async def _handshake(self, upstream: Upstream) -> None:
        timeout = self._settings.handshake_timeout_s
        first = json.loads(await asyncio.wait_for(upstream.recv(), timeout=timeout))
        if first.get("type") != "session.created":
            raise ConnectionError(f"expected session.created, got {first.get('type')!r}")
        await upstream.send(json.dumps(transcription_session_update(self._settings)))
        while True:
            event = json.loads(await asyncio.wait_for(upstream.recv(), timeout=timeout))
            if event.get("type") == "session.updated":
                return
            if event.get("type") == "error":
                error = event.get("error") or {}
                logger.warning("transcription session refused: %s", error)
                if error.get("type") == "invalid_request_error" and error.get("code") not in (
                    "rate_limit_exceeded",
                    "server_error",
                ):
                    raise SettingsRefused(
                        "The model refused Koe's transcription settings (a language it cannot "
                        "transcribe, or a transcription model it does not have)."
                    )
                raise ConnectionError(f"the session failed to start: {error.get('code')!r}")

    async def _pump(self) -> str:
        """Relay the model's events until this session must end; returns why it ended."""
        upstream = self._upstream
        assert upstream is not None
        deadline = self._opened_at + (
            self._settings.max_session_seconds - self._settings.rollover_margin_s
        )
        reason = "upstream_dropped"
        while not self._closing:
            remaining = deadline - self._clock()
            if remaining <= 0 and not self._pending and not self._commit_asked:
                # Between segments, nothing heard and not yet transcribed: the planned moment.
                reason = "max_session_age"
                break
            try:
                raw = await asyncio.wait_for(upstream.recv(), timeout=max(remaining, 0.25))
            except TimeoutError:
                continue
            except Exception:
                break
            try:
                event = json.loads(raw)
            except (TypeError, ValueError):
                continue
            if isinstance(event, dict) and await self._handle(event):
                reason = "session_expired"
                break
            if self._pending or self._commit_asked:
                self._settled.clear()
            else:
                self._settled.set()
        self._ready.clear()
        with contextlib.suppress(Exception):
            await upstream.close()
        if not self._closing:
            await self._emit({"type": "status", "status": "reconnecting"})
        return reason

    # -- upstream events -------------------------------------------------------------------------
    async def _handle(self, event: dict[str, Any]) -> bool:
        """Act on one model event; True when the model ended the session."""
        kind = event.get("type")
        item = str(event.get("item_id") or "")
        if kind == "error":
            code = str((event.get("error") or {}).get("code") or "")
            if code == "session_expired":
                return True
            logger.warning("transcription upstream error %s", code)
            self._commit_asked = False  # a commit the model refused (nothing to commit) is over
        elif kind == "input_audio_buffer.speech_started":
            start = int(event.get("audio_start_ms") or 0)
            self._pending[item] = _Pending(segment_id=self._new_id(), start_ms=start)
            await self._emit({"type": "speech", "speaking": True})
        elif kind == "input_audio_buffer.speech_stopped":
            self._pending_for(item).end_ms = int(event.get("audio_end_ms") or self._sent_ms)
            await self._emit({"type": "speech", "speaking": False})
        elif kind == "input_audio_buffer.committed":
            self._commit_asked = False
            committed = self._pending_for(item)
            if committed.end_ms is None:
                committed.end_ms = self._sent_ms
        elif kind == "conversation.item.input_audio_transcription.delta":
            pending = self._pending.get(item)
            if pending is not None and event.get("delta"):
                pending.announced = True
                await self._emit(
                    {
                        "type": "segment.delta",
                        "segment_id": pending.segment_id,
                        "start_ms": self._offset_ms + pending.start_ms,
                        "delta": str(event["delta"]),
                    }
                )
        elif kind in (
            "conversation.item.input_audio_transcription.completed",
            "conversation.item.input_audio_transcription.failed",
        ):
            await self._finish(item, event)
        return False

    async def _finish(self, item: str, event: dict[str, Any]) -> None:
        pending = self._pending.pop(item, None)
        if pending is None:
            return
        end = pending.end_ms if pending.end_ms is not None else self._sent_ms
        self._release_audio_before(end)
        text = str(event.get("transcript") or "").strip()
        failed = str(event.get("type")).endswith(".failed")
        start, end = self._offset_ms + pending.start_ms, self._offset_ms + end
        if (not text and not failed) or self._stored_already(start, end):
            # A cough or a door; or speech a fresh session heard again because its audio was
            # resent with an older segment's.
            if pending.announced:
                await self._emit({"type": "segment.discarded", "segment_id": pending.segment_id})
            return
        segment = Segment(
            segment_id=pending.segment_id,
            start_ms=start,
            end_ms=end,
            text=text,
            speaker=str(event.get("speaker") or ""),
            failed=failed,
        )
        self._stored.append((start, end))
        self._segment(segment)
        await self._emit({"type": "segment.done", **asdict(segment)})

    def _stored_already(self, start: int, end: int) -> bool:
        length = max(1, end - start)
        return any(min(end, e) - max(start, s) > length / 2 for s, e in self._stored)

    def _release_audio_before(self, end_ms: int) -> None:
        # Audio up to the end of this segment is done with, unless an older one still waits.
        waiting = [p.start_ms for p in self._pending.values()]
        self._kept_from_ms = max(self._kept_from_ms, min([end_ms, *waiting]))
        while self._kept and self._kept[0][0] + _ms(self._kept[0][1]) <= self._kept_from_ms:
            self._kept.popleft()

    def _pending_for(self, item: str) -> _Pending:
        # A commit without speech_started (the user paused) covers all audio not yet segmented.
        if item not in self._pending:
            committed = [p.end_ms for p in self._pending.values() if p.end_ms is not None]
            start = max([self._kept_from_ms, *committed])
            self._pending[item] = _Pending(segment_id=self._new_id(), start_ms=start)
        return self._pending[item]

    def _new_id(self) -> str:
        self._counter += 1
        return f"s{self._counter}"

    # -- browser ---------------------------------------------------------------------------------
    async def audio(self, pcm: bytes) -> None:
        if self._paused or self._closing:
            return  # a paused meeting records nothing
        if not self._ready.is_set():
            self._held.append(pcm)
            self._held_ms += _ms(pcm)
            while self._held_ms > self._settings.hold_ms and len(self._held) > 1:
                lost = _ms(self._held.popleft())
                self._held_ms -= lost
                self.dropped_ms += lost
            return
        await self._send_audio(pcm)

    async def pause(self) -> None:
        """The user paused: what was said so far becomes a segment now, and nothing more is
        heard until resume()."""
        self._paused = True
        upstream = self._upstream
        if self._ready.is_set() and upstream is not None and self._unsegmented_ms() >= 100:
            self._commit_asked = True
            self._settled.clear()
            with contextlib.suppress(Exception):
                await upstream.send(json.dumps({"type": "input_audio_buffer.commit"}))
        await self._emit({"type": "status", "status": "paused"})

    async def resume(self) -> None:
        self._paused = False
        await self._emit({"type": "status", "status": "listening"})

    def _unsegmented_ms(self) -> int:
        committed = [p.end_ms for p in self._pending.values() if p.end_ms is not None]
        return self._sent_ms - max([self._kept_from_ms, *committed])

    async def _send_audio(self, pcm: bytes) -> None:
        upstream = self._upstream
        if upstream is None:
            return
        self._kept.append((self._sent_ms, pcm))
        self._sent_ms += _ms(pcm)
        # Bounded: a segment the model never transcribes must not keep the meeting in memory.
        while self._kept and self._sent_ms - self._kept[0][0] > self._settings.resend_ms:
            start, dropped = self._kept.popleft()
            self._kept_from_ms = max(self._kept_from_ms, start + _ms(dropped))
        text = json.dumps(
            {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}
        )
        # A failed send means the session is gone: _pump notices and the audio is resent.
        with contextlib.suppress(Exception):
            await upstream.send(text)


def _ms(pcm: bytes) -> int:
    return len(pcm) // BYTES_PER_MS
