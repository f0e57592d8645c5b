"""One browser conversation's model session, owned by the server.

RealtimeSession speaks GA Realtime upstream and Koe's browser protocol downstream. It sends the
server's policy, runs tools, keeps the conversation's text so that a fresh upstream session can
take over (before the provider's time limit, on `session_expired`, or after a dropped
connection), and reports what happened as records for the audit trail. It knows nothing of
Django: the consumer gives it a connector, a tool box, and two callbacks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from voice.realtime.browser_protocol import (
    BYTES_PER_MS,
    BrowserCommand,
    Cancel,
    Clear,
    Commit,
    Mode,
    Text,
    Truncate,
    error_event,
)
from voice.realtime.downstream import Downstream, Outgoing, Status, status_event, usage_summary
from voice.realtime.policy import (
    SessionPolicy,
    TurnMode,
    session_update_event,
    turn_mode_update_event,
)
from voice.realtime.tools import Citation, ToolBox, ToolCall, ToolOutcome
from voice.realtime.turn_audio import TurnAudio

logger = logging.getLogger(__name__)


class Upstream(Protocol):
    """What the session needs of a WebSocket connection (websockets' client has this shape)."""

    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def close(self) -> None: ...


Connector = Callable[[], Awaitable[Upstream]]
# Asked before each reconnection: seconds to wait first (0 = go), e.g. a shared rate limit.
ReconnectGate = Callable[[], Awaitable[float]]
Emit = Callable[[Outgoing], Awaitable[None]]


@dataclass(frozen=True)
class Record:
    """Something the audit trail must keep; `data` is JSON-ready."""

    kind: str
    data: dict[str, Any]
    at: float = field(default_factory=time.time)


Recorder = Callable[[Record], None]


class UpstreamUnavailable(Exception):
    """No upstream session could be opened (after retries)."""


@dataclass
class Turn:
    koe_item_id: str
    role: str  # "user" | "assistant"
    text: str
    # False while an assistant turn waits for its transcript (its text is not known yet).
    transcribed: bool = True


@dataclass
class SessionSettings:
    max_session_seconds: float = 30 * 60
    # Roll over this long before the provider's limit, while the conversation is idle.
    rollover_margin_s: float = 60
    connect_attempts: int = 3
    connect_backoff_s: float = 0.5
    send_timeout_s: float = 5.0
    # Text budget for replaying the conversation into a fresh session.
    replay_budget_chars: int = 6000
    replay_recent_turns: int = 8
    # Audio buffered while a fresh session opens (beyond it the oldest is dropped).
    rollover_audio_buffer_ms: int = 3000
    # How long a browser command waits for an upstream session that is still opening.
    command_wait_s: float = 15.0
    # Sessions that end sooner than this (without a planned rollover) count as quick drops;
    # after this many in a row the conversation ends as upstream_unavailable.
    healthy_session_s: float = 10.0
    max_quick_drops: int = 5
    # How long a new upstream session may take to say session.created / session.updated.
    handshake_timeout_s: float = 10.0
    # An answer was asked for and the model has said nothing at all for this long: the session
    # is hung (a peer that keeps the socket open but stopped talking), move to a fresh one.
    response_timeout_s: float = 20.0
    # Frames that are not Realtime events (not JSON, not an object, binary) a session may send
    # before Koe stops trusting it and moves to a fresh one; one stray frame is only logged.
    garbage_limit: int = 3
    # The user's audio since their last committed turn, resent to a fresh session when it
    # takes over in the middle of their speech (at most this much; beyond it the oldest goes).
    resend_speech_ms: int = 20_000
    # While nobody speaks only this much of that audio is kept (the model's prefix padding).
    resend_quiet_ms: int = 1_000


# Stores one turn's audio: (Koe item id, "user" or "assistant", PCM16 24 kHz). Called on the
# event loop; it must hand the writing to a thread, not do it.
AudioStore = Callable[[str, str, bytes], None]


class RealtimeSession:
    def __init__(
        self,
        *,
        connect: Connector,
        policy: SessionPolicy,
        tools: ToolBox,
        emit: Emit,
        record: Recorder,
        mode: TurnMode = TurnMode.HANDS_FREE,
        settings: SessionSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        reconnect_gate: ReconnectGate | None = None,
        store_audio: AudioStore | None = None,
    ) -> None:
        self._reconnect_gate = reconnect_gate
        # The optional recording of each turn's audio (KOE_RECORD_AUDIO): None records nothing.
        self._store_audio = store_audio
        self._turn_audio = TurnAudio(hands_free=mode != TurnMode.PUSH_TO_TALK)
        self._connect = connect
        self._policy = policy
        self._tools = tools
        self._emit = emit
        self._record = record
        self._mode = mode
        self._settings = settings or SessionSettings()
        self._clock = clock

        self._down = Downstream()
        self._upstream: Upstream | None = None
        self._ready = asyncio.Event()
        self._opened_at = 0.0
        self._session_number = 0
        self._closing = False
        self._end_reason = ""

        self._response_active = False
        self._response_wanted = False
        self._rollover_wanted = ""
        self._calls: dict[str, asyncio.Task[ToolOutcome]] = {}
        self._call_specs: dict[str, ToolCall] = {}
        self._call_names: dict[str, str] = {}
        self._pending_citations: list[Citation] = []
        self._history: list[Turn] = []
        self._truncations: dict[str, int] = {}
        # Items Koe itself created, by the client id it gave them: id -> (Koe id, replayed?).
        self._own_items: dict[str, tuple[str, bool]] = {}
        self._own_counter = 0
        self._turns_by_id: dict[str, Turn] = {}
        self._pending_typed: dict[str, str] = {}  # client item id -> typed text, until echoed
        self._closed = asyncio.Event()
        # Set once run() is over: nothing will become ready any more.
        self._ended = asyncio.Event()
        self._turn_interrupted = False
        self._user_speaking = False
        self._quick_drops = 0
        self._response_request_id = ""
        self._speech_stopped_at: float | None = None
        self._first_audio_seen: set[str] = set()
        self._held_audio: deque[bytes] = deque()
        self._held_audio_bytes = 0
        # Audio sent upstream since the last committed user turn (resent after a rollover that
        # cut into the user's speech).
        self._turn_pcm: deque[bytes] = deque()
        self._turn_pcm_bytes = 0
        self._resume_speech = False
        self._commit_pending = False
        # A committed user turn whose answer the server will create (server VAD) has not begun.
        self._answer_expected = False
        self._last_event_at = 0.0
        # Answers still streaming: upstream item id -> their transcript so far.
        self._open_answers: dict[str, list[str]] = {}

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def end_reason(self) -> str:
        return self._end_reason

    async def run(self) -> None:
        """Open the first upstream session and pump events until close() or a fatal failure."""
        try:
            await self._open(reason="start")
            while not self._closing:
                await self._pump_until_dropped()
                if self._closing:
                    break
                await self._brake_reconnects()
                await self._wait_for_gate()
                await self._open(reason=self._rollover_wanted or "upstream_dropped")
        except UpstreamUnavailable:
            self._end_reason = self._end_reason or "upstream_unavailable"
            await self._emit(
                error_event("upstream_unavailable", "The assistant is unavailable right now.")
            )
        except Exception:
            # A bug must end this conversation visibly, not leave a socket with nobody behind it.
            logger.exception("voice session failed")
            self._end_reason = self._end_reason or "error"
            with contextlib.suppress(Exception):
                await self._emit(error_event("internal_error", "Something went wrong in Koe."))
        finally:
            await self._shutdown()

    async def _brake_reconnects(self) -> None:
        # A session that dies young (an upstream closing right after accepting, a mass drop)
        # must not turn into a tight reconnect loop against the provider.
        lived = self._clock() - self._opened_at
        planned = self._rollover_wanted == "max_session_age"
        if planned or lived >= self._settings.healthy_session_s:
            self._quick_drops = 0
            return
        self._quick_drops += 1
        if self._quick_drops > self._settings.max_quick_drops:
            self._end_reason = "upstream_unavailable"
            raise UpstreamUnavailable("the model keeps dropping the session")
        delay = min(30.0, self._settings.connect_backoff_s * (2**self._quick_drops))
        pause = delay * (0.5 + random.random() / 2)  # noqa: S311 (jitter, not a secret)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=pause)

    async def _wait_for_gate(self) -> None:
        # Reconnections count against the same rate of new model sessions as new conversations.
        if self._reconnect_gate is None:
            return
        while not self._closing:
            wait_s = await self._reconnect_gate()
            if wait_s <= 0:
                return
            logger.info("reconnect waits %.0f s for the connection rate limit", wait_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), timeout=wait_s)

    async def close(self, reason: str = "client_closed") -> None:
        """End the conversation (the browser left)."""
        if not self._end_reason:
            self._end_reason = reason
        self._closing = True
        self._closed.set()
        upstream = self._upstream
        if upstream is not None:
            with contextlib.suppress(Exception):
                await upstream.close()

    async def _shutdown(self) -> None:
        for task in self._calls.values():
            task.cancel()
        self._calls.clear()
        if self._upstream is not None:
            with contextlib.suppress(Exception):
                await self._upstream.close()
        # An answer still streaming when the conversation ends is kept as far as it got.
        self._answers_cut_off(self._end_reason or "client_closed")
        self._record(Record("ended", {"reason": self._end_reason or "client_closed"}))
        self._ended.set()

    async def _open(self, *, reason: str) -> None:
        self._ready.clear()
        try:
            upstream = await upstream_open(
                self._connect,
                self._handshake,
                attempts=self._settings.connect_attempts,
                backoff_s=self._settings.connect_backoff_s,
                closing=lambda: self._closing,
            )
        except ConnectionError as exc:
            self._end_reason = "upstream_unavailable"
            raise UpstreamUnavailable(str(exc)) from None
        if upstream is not None:
            self._upstream = upstream
            self._opened_at = self._clock()
            self._session_number += 1
            self._response_active = False
            self._response_request_id = ""
            self._rollover_wanted = ""
            self._user_speaking = False
            if self._session_number > 1:
                await self._replay()
                await self._emit({"type": "notice", "notice": "reconnected"})
                self._record(
                    Record("rollover", {"reason": reason, "session": self._session_number})
                )
                interrupted, self._turn_interrupted = self._turn_interrupted, False
                self._response_wanted = False
                last = next((t for t in reversed(self._history) if t.text.strip()), None)
                if interrupted and last is not None and last.role == "user":
                    # The question was asked but its answer was lost with the old session.
                    await self._send_response_create(setup=True)
                else:
                    if interrupted:
                        # Its words never arrived: answering would answer an older question.
                        await self._emit(
                            error_event(
                                "repeat_please", "The connection was renewed: please ask again."
                            )
                        )
                    await self._emit(status_event(Status.LISTENING))
            self._turn_audio.session_opened()
            await self._resend_unfinished_speech()
            # Held audio goes first, so that no new frame overtakes it.
            await self._flush_held_audio()
            self._ready.set()

    async def _handshake(self, upstream: Upstream) -> None:
        timeout = self._settings.handshake_timeout_s
        first = json.loads(await asyncio.wait_for(upstream.recv(), timeout=timeout))
        if first.get("type") != "session.created":
            raise ConnectionError(f"expected session.created, got {first.get('type')!r}")
        await upstream.send(json.dumps(session_update_event(self._policy, self._mode)))
        # Fail closed: a session that refused Koe's policy must not carry the conversation.
        while True:
            event = json.loads(await asyncio.wait_for(upstream.recv(), timeout=timeout))
            if event.get("type") == "session.updated":
                return
            if event.get("type") == "error":
                code = (event.get("error") or {}).get("code")
                raise ConnectionError(f"the model session refused Koe's policy ({code})")

    # -- upstream events -------------------------------------------------------------------------
    async def _pump_until_dropped(self) -> None:
        upstream = self._upstream
        assert upstream is not None
        deadline = self._settings.max_session_seconds - self._settings.rollover_margin_s
        garbage = 0
        self._last_event_at = self._clock()
        while not self._closing:
            now = self._clock()
            remaining = self._opened_at + deadline - now
            idle = not (
                self._response_active
                or self._calls
                or self._user_speaking
                or self._commit_pending
                or self._answer_expected
            )
            if remaining <= 0 and idle:
                self._rollover_wanted = "max_session_age"
                break
            wait_s = max(remaining, 0.05)
            if self._response_active or self._answer_expected:
                silent_s = now - self._last_event_at
                if silent_s >= self._settings.response_timeout_s:
                    logger.warning("upstream silent for %.0f s during an answer", silent_s)
                    self._rollover_wanted = "upstream_silent"
                    break
                wait_s = min(wait_s, self._settings.response_timeout_s - silent_s)
            try:
                raw = await asyncio.wait_for(upstream.recv(), timeout=wait_s)
            except TimeoutError:
                continue
            except Exception:
                # Closed or broken connection: a fresh session takes over (unless we are closing).
                break
            event = _decode_event(raw)
            if event is None:
                garbage += 1
                logger.warning("upstream sent a frame that is not a Realtime event (%d)", garbage)
                if garbage > self._settings.garbage_limit:
                    self._rollover_wanted = "upstream_garbage"
                    break
                continue
            self._last_event_at = self._clock()
            try:
                if await self._handle_upstream(event):
                    break
            except (KeyError, TypeError, ValueError, AttributeError):
                # One malformed event must not end the conversation.
                logger.exception("could not handle upstream %s", event.get("type"))
        self._ready.clear()
        with contextlib.suppress(Exception):
            await upstream.close()
        self._turn_interrupted = bool(
            self._response_active or self._calls or self._response_wanted or self._answer_expected
        )
        # Speaking, or turn detection heard the end but the turn was not committed yet.
        self._resume_speech = self._user_speaking or self._commit_pending
        self._commit_pending = False
        self._answer_expected = False
        self._pending_citations = []
        # Tool calls of a dropped session cannot be answered there; the new session asks again.
        for task in self._calls.values():
            task.cancel()
        self._calls.clear()
        self._call_specs.clear()
        self._response_active = False
        if not self._closing:
            await self._tell_answers_cut_off(self._rollover_wanted or "upstream_dropped")
            await self._emit(status_event(Status.RECONNECTING))

    def _answers_cut_off(self, reason: str) -> list[tuple[str, str, bool]]:
        """Answers the session was still streaming end where they stopped: the record keeps
        the words that had arrived. Returns (Koe item id, words, had audio) of each."""
        answers, self._open_answers = self._open_answers, {}
        cut: list[tuple[str, str, bool]] = []
        for upstream_id, parts in answers.items():
            koe_id = self._down.ids.koe_id(upstream_id)
            text = "".join(parts).strip()
            had_audio = self._down.ledger.received_ms(upstream_id) > 0
            if had_audio:
                self._keep_audio("assistant", upstream_id)
            self._record(
                Record(
                    "transcript",
                    {"item_id": koe_id, "role": "assistant", "text": text, "cut_off": reason},
                )
            )
            cut.append((koe_id, text, had_audio))
        return cut

    async def _tell_answers_cut_off(self, reason: str) -> None:
        """The page closes the cut answers as interrupted; the fresh session answers again."""
        for koe_id, text, had_audio in self._answers_cut_off(reason):
            if had_audio:
                await self._emit({"type": "audio.done", "item_id": koe_id})
            await self._emit(
                {
                    "type": "transcript.done",
                    "role": "assistant",
                    "item_id": koe_id,
                    "text": text,
                    "interrupted": True,
                }
            )

    async def _handle_upstream(self, event: dict[str, Any]) -> bool:
        """Handle one upstream event; True means this upstream session is over."""
        kind = event.get("type")
        if kind == "error":
            return await self._upstream_error(event)
        if kind == "response.created":
            self._response_active = True
            self._answer_expected = False
            self._response_request_id = ""
        elif kind == "input_audio_buffer.speech_started":
            self._user_speaking = True
            self._turn_audio.speech_started(
                str(event.get("item_id") or ""), int(event.get("audio_start_ms") or 0)
            )
        elif kind == "input_audio_buffer.speech_stopped":
            self._user_speaking = False
            self._commit_pending = True  # `committed` follows
            self._speech_stopped_at = self._clock()
            self._turn_audio.speech_stopped(
                str(event.get("item_id") or ""), int(event.get("audio_end_ms") or 0)
            )
        elif kind == "input_audio_buffer.committed":
            self._keep_audio("user", str(event.get("item_id") or ""))
            self._turn_pcm_reset()
            self._commit_pending = False
            # With server turn detection the model answers by itself: until it starts, a drop
            # would lose this question's answer.
            self._answer_expected = self._mode != TurnMode.PUSH_TO_TALK
        elif kind == "response.output_audio.done":
            self._keep_audio("assistant", str(event.get("item_id") or ""))
        elif kind == "response.output_item.added":
            item = event.get("item") or {}
            if item.get("type") == "function_call" and item.get("call_id"):
                self._call_names[str(item["call_id"])] = str(item.get("name") or "")
        elif kind == "response.function_call_arguments.done":
            await self._tool_call_started(event)
        elif kind == "response.output_audio.delta":
            self._note_first_audio(str(event.get("item_id") or ""))
            if self._store_audio is not None:
                with contextlib.suppress(binascii.Error, ValueError):
                    self._turn_audio.answer_audio(
                        str(event.get("item_id") or ""),
                        base64.b64decode(event.get("delta") or "", validate=True),
                    )
        elif kind == "conversation.item.added":
            upstream_id = str((event.get("item") or {}).get("id") or "")
            koe_id, replayed = self._own_items.pop(upstream_id, ("", False))
            if replayed:
                # Our own replayed item coming back: it keeps its Koe id, the browser has it.
                if koe_id:
                    self._down.ids.rebind(koe_id, upstream_id)
                return False
            await self._item_added(event)
        elif kind == "conversation.item.input_audio_transcription.completed":
            self._turn_done("user", event, "transcript")
        elif kind == "response.output_audio_transcript.delta":
            parts = self._open_answers.get(str(event.get("item_id") or ""))
            if parts is not None:
                parts.append(str(event.get("delta") or ""))
        elif kind == "response.output_audio_transcript.done":
            self._open_answers.pop(str(event.get("item_id") or ""), None)
            self._turn_done("assistant", event, "transcript")
        for out in self._down.translate(event):
            await self._emit(out)
        if kind == "response.done":
            for item in (event.get("response") or {}).get("output") or []:
                if isinstance(item, dict):
                    self._open_answers.pop(str(item.get("id") or ""), None)
            self._record_usage(event)
            # With tool calls the turn goes on: a typed question must wait for the follow-up.
            self._response_active = bool(self._calls)
            await self._response_finished()
        return False

    async def _upstream_error(self, event: dict[str, Any]) -> bool:
        error = event.get("error") or {}
        code = str(error.get("code") or error.get("type") or "unknown")
        if code == "session_expired":
            self._rollover_wanted = "session_expired"
            return True
        if self._response_request_id and error.get("event_id") == self._response_request_id:
            # Our response.create was refused: no response is coming for it.
            self._response_request_id = ""
            self._response_active = False
        if code == "conversation_already_has_active_response":
            self._response_wanted = True  # it will go out after response.done
            return False
        if code == "response_cancel_not_active":
            return False
        # The upstream message may echo what Koe sent (instructions, tool schemas): keep it here.
        logger.warning("upstream error %s: %s", code, error.get("message"))
        self._record(Record("upstream_error", {"code": code}))
        await self._emit(error_event("upstream_error", "The assistant could not handle that."))
        return False

    async def _item_added(self, event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if item.get("type") == "message" and item.get("role") in ("user", "assistant"):
            self._turn_placed(item)
        is_answer = item.get("type") == "message" and item.get("role") == "assistant"
        if is_answer and item.get("id"):
            self._open_answers[str(item["id"])] = []
        if not (is_answer and self._pending_citations):
            return
        # The passages the tools found belong to the answer that follows them.
        koe_id = self._down.ids.koe_id(str(item.get("id") or ""))
        citations, self._pending_citations = self._pending_citations, []
        await self._emit(
            {
                "type": "citations",
                "item_id": koe_id,
                "citations": [c.as_browser() for c in citations],
            }
        )
        self._record(
            Record(
                "citations",
                {
                    "item_id": koe_id,
                    "document_ids": [c.document_id for c in citations],
                    # The passages as they were: a later version of a document changes nothing
                    # in what this answer was based on.
                    "passages": [
                        {
                            "document_id": c.document_id,
                            "version": c.document_version,
                            "title": c.title,
                            "location": c.location,
                            "text": c.passage,
                        }
                        for c in citations
                    ],
                },
            )
        )

    def _turn_placed(self, item: dict[str, Any]) -> None:
        """Give the turn its place in the history now: transcripts can arrive out of order."""
        koe_id = self._down.ids.koe_id(str(item.get("id") or ""))
        typed = " ".join(
            str(part.get("text") or "")
            for part in item.get("content") or []
            if isinstance(part, dict) and part.get("type") == "input_text"
        ).strip()
        turn = Turn(koe_item_id=koe_id, role=str(item["role"]), text=typed, transcribed=bool(typed))
        self._history.append(turn)
        self._turns_by_id[koe_id] = turn
        if typed:
            self._pending_typed.pop(str(item.get("id") or ""), None)
            self._record(
                Record(
                    "transcript", {"item_id": koe_id, "role": "user", "text": typed, "typed": True}
                )
            )

    def _turn_done(self, role: str, event: dict[str, Any], key: str) -> None:
        upstream_id = str(event.get("item_id") or "")
        koe_id = self._down.ids.koe_id(upstream_id)
        text = str(event.get(key) or "")
        data: dict[str, Any] = {"item_id": koe_id, "role": role, "text": text}
        heard_ms = self._truncations.get(koe_id)
        if heard_ms is not None:
            # Barged in before the transcript finished: keep the share of it that was heard.
            text = _heard_part(text, heard_ms, self._down.ledger.received_ms(upstream_id))
            data["heard_text"] = text
        turn = self._turns_by_id.get(koe_id)
        if turn is None:
            turn = Turn(koe_item_id=koe_id, role=role, text=text)
            self._history.append(turn)
            self._turns_by_id[koe_id] = turn
        turn.text = text
        turn.transcribed = True
        self._record(Record("transcript", data))

    def _note_first_audio(self, upstream_id: str) -> None:
        if not upstream_id or upstream_id in self._first_audio_seen:
            return
        self._first_audio_seen.add(upstream_id)
        if self._speech_stopped_at is not None:
            latency_ms = int((self._clock() - self._speech_stopped_at) * 1000)
            self._record(
                Record(
                    "latency",
                    {"item_id": self._down.ids.koe_id(upstream_id), "ms": latency_ms},
                )
            )
            self._speech_stopped_at = None

    def _record_usage(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        usage = response.get("usage")
        if isinstance(usage, dict):
            data: dict[str, Any] = {"status": response.get("status", ""), **usage_summary(usage)}
            # The turn the tokens were spent on: the answer's message, if the response had one.
            answer = next(
                (
                    item
                    for item in response.get("output") or []
                    if isinstance(item, dict) and item.get("type") == "message" and item.get("id")
                ),
                None,
            )
            known = self._down.ids.known_koe_id(str(answer["id"])) if answer else None
            if known:
                data["item_id"] = known
            self._record(Record("usage", data))

    # -- tools -----------------------------------------------------------------------------------
    async def _tool_call_started(self, event: dict[str, Any]) -> None:
        call = ToolCall(
            call_id=str(event.get("call_id") or ""),
            name=str(event.get("name") or self._call_names.get(str(event.get("call_id")), "")),
            arguments=str(event.get("arguments") or ""),
        )
        if not call.call_id or call.call_id in self._calls:
            return
        if not self._calls:
            await self._emit(status_event(Status.SEARCHING))
        self._call_specs[call.call_id] = call
        # Start at once: the search runs while the model finishes its response.
        self._calls[call.call_id] = asyncio.create_task(self._tools.run(call))

    async def _response_finished(self) -> None:
        if self._calls:
            calls, self._calls = self._calls, {}
            specs, self._call_specs = self._call_specs, {}
            for call_id, task in calls.items():
                outcome = await task  # ToolBox.run bounds it with its own timeout
                spec = specs[call_id]
                self._pending_citations.extend(outcome.citations)
                self._record(
                    Record(
                        "tool_call",
                        {
                            "name": spec.name,
                            "arguments": spec.arguments,
                            "document_ids": [c.document_id for c in outcome.citations],
                            "error": outcome.error,
                        },
                    )
                )
                await self._send(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "function_call_output",
                            "call_id": call_id,
                            "output": outcome.output,
                        },
                    }
                )
            # The follow-up answer; a question asked meanwhile stays queued behind it.
            await self._send_response_create()
            return
        if self._response_wanted and not self._response_active:
            self._response_wanted = False
            await self._send_response_create()

    # -- browser commands ------------------------------------------------------------------------
    async def audio(self, pcm: bytes) -> None:
        """Append microphone audio (already checked by the consumer)."""
        if not self._ready.is_set():
            self._hold_audio(pcm)
            return
        if self._mode == TurnMode.PUSH_TO_TALK:
            self._user_speaking = True  # until the commit
        await self._send_audio(pcm)
        self._audio_sent(pcm)

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until an upstream session is open; False when it did not open in time or the
        session ended meanwhile (a dead upstream must not hold the browser's messages)."""
        if self._ready.is_set():
            return True
        waiters = [asyncio.ensure_future(e.wait()) for e in (self._ready, self._ended)]
        try:
            await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return self._ready.is_set()

    async def command(self, command: BrowserCommand) -> None:
        # Commands wait for a session that is still opening (start or rollover); audio is held.
        if not await self.wait_ready(self._settings.command_wait_s):
            if not self._ended.is_set():  # an ended session has said why already
                await self._emit(error_event("not_ready", "The assistant is not connected yet."))
            return
        if isinstance(command, Commit):
            # Push-to-talk: the user's speech ended when they let go.
            self._user_speaking = False
            self._speech_stopped_at = self._clock()
            await self._send({"type": "input_audio_buffer.commit"})
            await self._request_response()
        elif isinstance(command, Clear):
            self._user_speaking = False
            await self._send({"type": "input_audio_buffer.clear"})
            self._turn_audio.cleared()
            self._turn_pcm_reset()
        elif isinstance(command, Cancel):
            if self._response_active:
                await self._send({"type": "response.cancel"})
        elif isinstance(command, Truncate):
            await self._truncate(command)
        elif isinstance(command, Text):
            client_id = self._own_item_id("kt", koe_id="", replayed=False)
            # Recorded when the model confirms the item (with its id); kept here until then.
            self._pending_typed[client_id] = command.text
            await self._send(
                {
                    "type": "conversation.item.create",
                    "item": {
                        "id": client_id,
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": command.text}],
                    },
                }
            )
            await self._request_response()
        elif isinstance(command, Mode):
            self._mode = command.mode
            self._turn_audio.hands_free = command.mode != TurnMode.PUSH_TO_TALK
            self._user_speaking = False
            await self._send(turn_mode_update_event(self._policy, command.mode))

    async def _request_response(self) -> None:
        if self._response_active:
            self._response_wanted = True
            return
        await self._send_response_create()

    async def _send_response_create(self, *, setup: bool = False) -> None:
        # The event id lets an `error` about this very request clear the pending state.
        self._response_request_id = "koe_" + secrets.token_hex(8)
        self._response_active = True
        self._last_event_at = self._clock()  # the silence watch starts now
        await self._send(
            {"type": "response.create", "event_id": self._response_request_id}, setup=setup
        )

    async def _truncate(self, command: Truncate) -> None:
        upstream_id = self._down.ids.upstream_id(command.item_id)
        if upstream_id is None:
            return
        audio_end_ms = self._down.ledger.audio_end_ms(upstream_id, command.played_ms)
        if audio_end_ms is None:
            return  # no audio was received for it: nothing to cut
        await self._send(
            {
                "type": "conversation.item.truncate",
                "item_id": upstream_id,
                "content_index": 0,
                "audio_end_ms": audio_end_ms,
            }
        )
        received = self._down.ledger.received_ms(upstream_id)
        self._truncations[command.item_id] = audio_end_ms
        heard = self._cut_history(command.item_id, audio_end_ms, received)
        data: dict[str, Any] = {
            "item_id": command.item_id,
            "audio_end_ms": audio_end_ms,
            "received_ms": received,
        }
        if heard is not None:
            data["heard_text"] = heard
        self._record(Record("truncated", data))

    def _cut_history(self, koe_id: str, heard_ms: int, received_ms: int) -> str | None:
        """Cut the turn's text to what was heard; None if its transcript has not arrived."""
        turn = self._turns_by_id.get(koe_id)
        if turn is None or not turn.transcribed or received_ms <= 0:
            return None
        turn.text = _heard_part(turn.text, heard_ms, received_ms)
        return turn.text

    # -- rollover --------------------------------------------------------------------------------
    async def _replay(self) -> None:
        """Give a fresh upstream session the conversation so far, as items."""
        self._own_items.clear()
        # Typed questions the old session never confirmed are part of the conversation too.
        pending, self._pending_typed = self._pending_typed, {}
        for text in pending.values():
            self._history.append(Turn(koe_item_id="", role="user", text=text))
            self._record(
                Record("transcript", {"item_id": "", "role": "user", "text": text, "typed": True})
            )
        for koe_id, item in replay_items(
            self._history,
            budget_chars=self._settings.replay_budget_chars,
            recent_turns=self._settings.replay_recent_turns,
        ):
            # Our own id on each item tells its echo apart from anything else the model adds.
            item = {**item, "id": self._own_item_id("kr", koe_id=koe_id, replayed=True)}
            await self._send({"type": "conversation.item.create", "item": item}, setup=True)

    def _own_item_id(self, prefix: str, *, koe_id: str, replayed: bool) -> str:
        self._own_counter += 1
        client_id = f"{prefix}{self._session_number}_{self._own_counter}"
        self._own_items[client_id] = (koe_id, replayed)
        return client_id

    def _hold_audio(self, pcm: bytes) -> None:
        self._held_audio.append(pcm)
        self._held_audio_bytes += len(pcm)
        limit = self._settings.rollover_audio_buffer_ms * BYTES_PER_MS
        while self._held_audio_bytes > limit and self._held_audio:
            self._held_audio_bytes -= len(self._held_audio.popleft())

    def _keep_audio(self, role: str, upstream_id: str) -> None:
        """A user turn was committed or an answer's audio is complete: hand its audio over."""
        if role == "user":
            pcm = self._turn_audio.committed(upstream_id)
        else:
            pcm = self._turn_audio.answer_done(upstream_id)
        if self._store_audio is not None and pcm and upstream_id:
            self._store_audio(self._down.ids.koe_id(upstream_id), role, pcm)

    async def _flush_held_audio(self) -> None:
        while self._held_audio:
            pcm = self._held_audio.popleft()
            self._held_audio_bytes -= len(pcm)
            await self._send_audio(pcm, setup=True)
            self._audio_sent(pcm)

    def _audio_sent(self, pcm: bytes) -> None:
        if self._store_audio is not None:
            self._turn_audio.sent(pcm)
        self._turn_pcm.append(pcm)
        self._turn_pcm_bytes += len(pcm)
        speech = self._user_speaking or self._commit_pending
        keep_ms = self._settings.resend_speech_ms if speech else self._settings.resend_quiet_ms
        while self._turn_pcm_bytes > keep_ms * BYTES_PER_MS and len(self._turn_pcm) > 1:
            self._turn_pcm_bytes -= len(self._turn_pcm.popleft())

    def _turn_pcm_reset(self) -> None:
        self._turn_pcm.clear()
        self._turn_pcm_bytes = 0

    async def _resend_unfinished_speech(self) -> None:
        """The user was speaking when the old session went: what they said of this turn so far
        goes to the new session first (then the audio held meanwhile), so no words are lost.
        Sent from its own copy: the held audio's limit must not cut the start of the turn."""
        resend = list(self._turn_pcm) if self._resume_speech else []
        self._turn_pcm_reset()
        self._resume_speech = False
        if not resend:
            return
        # Still speaking: the buffer keeps the whole turn for a further rollover too.
        self._user_speaking = True
        for pcm in resend:
            await self._send_audio(pcm, setup=True)
            self._audio_sent(pcm)
        if self._mode != TurnMode.PUSH_TO_TALK:
            self._user_speaking = False  # the new session's turn detection says from here

    # -- sending ---------------------------------------------------------------------------------
    async def _send(self, event: dict[str, Any], *, setup: bool = False) -> None:
        await self._send_text(event["type"], json.dumps(event, ensure_ascii=False), setup=setup)

    async def _send_audio(self, pcm: bytes, *, setup: bool = False) -> None:
        # The hot path (50 frames a second per person): the event is spelled out rather than
        # built as a dict and encoded (base64 needs no JSON escaping).
        text = _APPEND_HEAD + base64.b64encode(pcm).decode("ascii") + '"}'
        await self._send_text("input_audio_buffer.append", text, setup=setup)

    async def _send_text(self, kind: str, text: str, *, setup: bool = False) -> None:
        upstream = self._upstream
        if upstream is None or not (setup or self._ready.is_set()):
            logger.info("dropped %s while no upstream session is open", kind)
            return
        try:
            await asyncio.wait_for(upstream.send(text), timeout=self._settings.send_timeout_s)
        except TimeoutError:
            # A peer that does not take our data for this long is as good as gone: close it,
            # and the reader moves the conversation to a fresh session.
            logger.warning("upstream send of %s timed out; reconnecting", kind)
            with contextlib.suppress(Exception):
                await upstream.close()
        except Exception as exc:
            # The reader notices the broken connection and rolls over.
            logger.warning("upstream send of %s failed: %r", kind, exc)


_APPEND_HEAD = '{"type": "input_audio_buffer.append", "audio": "'


async def upstream_open(
    connect: Connector,
    handshake: Callable[[Upstream], Awaitable[None]],
    *,
    attempts: int,
    backoff_s: float,
    closing: Callable[[], bool],
    final: tuple[type[Exception], ...] = (),
) -> Upstream | None:
    """Open an upstream session and run its handshake, with `attempts` tries and exponential
    back-off; None when the session is closing meanwhile. An exception in `final` ends the
    tries at once (retrying cannot help); after the last try, ConnectionError."""
    last: Exception | None = None
    for attempt in range(attempts):
        if closing():
            return None
        upstream = None
        try:
            upstream = await connect()
            await handshake(upstream)
        except Exception as exc:  # refused, timed out, websockets' InvalidStatus, bad handshake
            if upstream is not None:
                with contextlib.suppress(Exception):
                    await upstream.close()
            if isinstance(exc, final):
                raise
            last = exc
            logger.warning("upstream connect failed (%r), attempt %d", exc, attempt + 1)
            await asyncio.sleep(backoff_s * (2**attempt))
            continue
        return upstream
    raise ConnectionError(f"no upstream session could be opened: {last!r}")


def _decode_event(raw: str | bytes) -> dict[str, Any] | None:
    """A Realtime server event, or None for anything else (the service sends only JSON
    objects with a type, as text frames)."""
    if isinstance(raw, bytes):
        return None
    try:
        event = json.loads(raw)
    except json.JSONDecodeError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return None
    return event


def _heard_part(text: str, heard_ms: int, audio_ms: int) -> str:
    """The transcript streams with the audio: what was heard is the same share of the text."""
    return text[: int(len(text) * min(1.0, heard_ms / max(audio_ms, 1)))]


def replay_items(
    history: list[Turn], *, budget_chars: int, recent_turns: int
) -> list[tuple[str, dict[str, Any]]]:
    """Conversation items for a fresh session: older turns condensed, recent ones verbatim."""
    turns = [t for t in history if t.text.strip()]
    first_recent = max(0, len(turns) - recent_turns) if recent_turns > 0 else len(turns)
    # Recent turns keep their words, newest first, as far as the budget goes.
    verbatim: set[int] = set()
    used = 0
    for index in range(len(turns) - 1, first_recent - 1, -1):
        size = len(turns[index].text)
        if used + size > budget_chars and verbatim:
            break
        verbatim.add(index)
        used += size
    older = [t for i, t in enumerate(turns) if i not in verbatim]
    kept = [t for i, t in enumerate(turns) if i in verbatim]
    items: list[tuple[str, dict[str, Any]]] = []
    if older:
        room = max(200, budget_chars - used)
        per_turn = max(40, room // len(older))
        lines = [f"{t.role}: {_shorten(t.text, per_turn)}" for t in older]
        summary = _shorten("\n".join(lines), room)
        items.append(
            (
                "",
                {
                    "type": "message",
                    "role": "system",
                    "content": [
                        {
                            "type": "input_text",
                            "text": "Earlier in this conversation (condensed):\n" + summary,
                        }
                    ],
                },
            )
        )
    for turn in kept:
        content_type = "input_text" if turn.role == "user" else "output_text"
        items.append(
            (
                turn.koe_item_id,
                {
                    "type": "message",
                    "role": turn.role,
                    "content": [{"type": content_type, "text": turn.text}],
                },
            )
        )
    return items


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
