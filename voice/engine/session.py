"""One Realtime session of the offline engine, independent of the transport.

The transport hands every client event to `handle()` and sends whatever `send` is given; the
heavy work (Whisper, hibari, e5) runs in the engine's bounded thread pool, never on the event
loop, so many sessions stay responsive at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from voice.engine.answer import (
    SentenceEmbedder,
    answer_from_sources,
    sources_from_tool_output,
)
from voice.engine.audio import BYTES_PER_MS, duration_ms
from voice.engine.events import (
    audio_tokens,
    error_event,
    estimate_tokens,
    merged,
    new_id,
    session_defaults,
)
from voice.engine.stt import LANGUAGES, MODEL_NAME, MULTILINGUAL_MODEL_NAME
from voice.engine.vad import SpeechDetector, VadSettings

logger = logging.getLogger(__name__)

AUDIO_CHUNK_MS = 100  # size of each response.output_audio.delta
MIN_COMMIT_MS = 100  # the service refuses to commit less
MAX_BUFFER_MS = 15 * 60 * 1000  # an uncommitted buffer beyond this is refused, not kept
# With server VAD, silence before a turn is dropped but for this much beyond the padding (the
# VAD scores audio a window behind what has arrived).
SILENCE_KEPT_MS = 500


class SpeechToText(Protocol):
    def transcribe(self, pcm: bytes) -> str: ...


class TextToSpeech(Protocol):
    def sentences(self, text: str) -> list[str]: ...

    def speak(self, sentence: str) -> bytes: ...


@dataclass
class EngineModels:
    stt: SpeechToText  # English, and what a session without a language gets
    tts: TextToSpeech
    embedder: SentenceEmbedder
    pool: Executor
    # The VAD runs every 100 ms per session and must never queue behind a Whisper or hibari
    # job (barge-in would stall for every session), so it has threads of its own.
    vad_pool: Executor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="koe-vad")
    )
    # The Japanese transcriber, loaded on first use (in a worker thread, never on the loop).
    japanese_stt: Callable[[], SpeechToText] | None = None

    def stt_for(self, language: str | None) -> SpeechToText:
        """The transcriber of a session's transcription language."""
        if language == "ja" and self.japanese_stt is not None:
            return self.japanese_stt()
        return self.stt


@dataclass
class Item:
    """A conversation item as the engine keeps it."""

    data: dict[str, Any]
    audio: bytes = b""  # user input audio, or assistant output audio
    text: str = ""  # the words: a transcript, typed text, an answer, a tool output
    # A user's spoken turn: the one transcription of its audio (a response awaits it).
    transcription: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return str(self.data["id"])


@dataclass
class Response:
    id: str
    task: asyncio.Task[None] | None = None
    output: list[dict[str, Any]] = field(default_factory=list)
    speaking: Item | None = None  # the assistant item being spoken, until it is done
    # Where that item's content part sits (response_id, output_index, item_id, content_index).
    speaking_part: dict[str, Any] = field(default_factory=dict)
    input_tokens: dict[str, int] = field(default_factory=dict)
    output_text_tokens: int = 0
    output_audio_ms: int = 0


Send = Callable[[dict[str, Any]], Awaitable[None]]
Close = Callable[[int, str], Awaitable[None]]


class EngineSession:
    """One client's session: its settings, audio buffer, conversation and responses."""

    def __init__(
        self, *, send: Send, close: Close, models: EngineModels, kind: str, max_seconds: float
    ) -> None:
        self._send_event = send
        self._close = close
        self._models = models
        self._max_seconds = max_seconds
        self.session = session_defaults(kind, max_seconds=max_seconds)
        self.items: list[Item] = []
        self._buffer = bytearray()
        self._buffer_started_ms = 0  # input audio time at which the buffer begins
        self._audio_ms = 0  # all input audio received, in ms
        self._detector: SpeechDetector | None = None
        self._speech_item_id: str | None = None
        self._response: Response | None = None
        self._transcriptions: set[asyncio.Task[None]] = set()
        self._expiry: asyncio.Task[None] | None = None
        self._stopped = False
        self._configure_vad()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._send({"type": "session.created", "session": self.session})
        self._expiry = asyncio.create_task(self._expire())

    async def stop(self) -> None:
        self._stopped = True
        tasks = [t for t in (self._expiry,) if t]
        if self._response and self._response.task:
            tasks.append(self._response.task)
        tasks += list(self._transcriptions)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _expire(self) -> None:
        await asyncio.sleep(self._max_seconds)
        await self._send(
            error_event(
                f"Your session hit the maximum duration of {int(self._max_seconds)} seconds.",
                code="session_expired",
            )
        )
        await self._close(1001, "session expired")

    # -- client events ----------------------------------------------------------------------------

    async def handle(self, raw: str | bytes) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            await self._send(
                error_event("The server could not parse the JSON.", code="invalid_json")
            )
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            await self._send(error_event("Missing required parameter: 'type'.", param="type"))
            return
        client_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        handler = self._HANDLERS.get(event["type"])
        if handler is None:
            await self._refuse(
                f"Invalid value: '{event['type']}'. Supported values are: "
                + ", ".join(f"'{name}'" for name in self._HANDLERS)
                + ".",
                client_id,
                code="invalid_value",
                param="type",
            )
            return
        try:
            await handler(self, event, client_id)
        except (TypeError, ValueError, AttributeError, KeyError):
            # A value of the wrong shape somewhere deep in the event: say so, keep the session.
            logger.info("engine refused a malformed %s", event["type"], exc_info=True)
            await self._refuse(
                f"Invalid value in '{event['type']}'.", client_id, code="invalid_value"
            )

    async def _session_update(self, event: dict[str, Any], client_id: str | None) -> None:
        update = event.get("session")
        if not isinstance(update, dict):
            await self._refuse("Missing required parameter: 'session'.", client_id, param="session")
            return
        kind = update.get("type")
        if kind not in ("realtime", "transcription"):
            await self._refuse(
                "Missing required parameter: 'session.type'.", client_id, param="session.type"
            )
            return
        if kind != self.session["type"]:
            await self._refuse(
                f"Cannot change the session type from '{self.session['type']}' to '{kind}'.",
                client_id,
                param="session.type",
            )
            return
        candidate = merged(self.session, {k: v for k, v in update.items() if k not in ("id",)})
        problem = _session_problem(candidate)
        if problem:
            await self._refuse(problem[0], client_id, param=problem[1])
            return
        self.session = candidate
        self._configure_vad()
        await self._send({"type": "session.updated", "session": self.session})

    async def _buffer_append(self, event: dict[str, Any], client_id: str | None) -> None:
        try:
            pcm = base64.b64decode(str(event.get("audio", "")), validate=True)
        except (binascii.Error, ValueError):
            await self._refuse("Invalid 'audio': not base64.", client_id, param="audio")
            return
        if (len(self._buffer) + len(pcm)) // BYTES_PER_MS > MAX_BUFFER_MS:
            await self._refuse(
                "The input audio buffer is full: commit or clear it.",
                client_id,
                code="input_audio_buffer_full",
            )
            return
        self._buffer += pcm
        self._audio_ms += duration_ms(pcm)
        if self._detector is None:
            return
        detector = self._detector
        vad_events = await asyncio.get_running_loop().run_in_executor(
            self._models.vad_pool, detector.feed, pcm
        )
        for vad in vad_events:
            if vad.kind == "started":
                await self._speech_started(vad.at_ms)
            else:
                await self._speech_stopped(vad.at_ms)
        if not detector.speaking and self._speech_item_id is None:
            self._trim_silence(detector.settings.prefix_padding_ms)

    def _trim_silence(self, prefix_padding_ms: int) -> None:
        """While nobody speaks, keep only what a turn starting now could reach back to."""
        keep_ms = prefix_padding_ms + SILENCE_KEPT_MS
        excess_ms = len(self._buffer) // BYTES_PER_MS - keep_ms
        if excess_ms > 0:
            del self._buffer[: excess_ms * BYTES_PER_MS]
            self._buffer_started_ms += excess_ms

    async def _buffer_commit(self, event: dict[str, Any], client_id: str | None) -> None:
        held = len(self._buffer) // BYTES_PER_MS
        if held < MIN_COMMIT_MS:
            await self._refuse(
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"{MIN_COMMIT_MS}ms of audio, but buffer only has {held:.2f}ms of audio.",
                client_id,
                code="input_audio_buffer_commit_empty",
            )
            return
        await self._commit(self._speech_item_id or new_id("item"), respond=False)
        if self._detector:
            self._detector.reset()  # a turn in progress ended with this commit

    async def _buffer_clear(self, event: dict[str, Any], client_id: str | None) -> None:
        self._buffer.clear()
        self._buffer_started_ms = self._audio_ms
        self._speech_item_id = None
        if self._detector:
            self._detector.reset()
        await self._send({"type": "input_audio_buffer.cleared"})

    async def _item_create(self, event: dict[str, Any], client_id: str | None) -> None:
        item = event.get("item")
        if not isinstance(item, dict) or item.get("type") not in (
            "message",
            "function_call_output",
        ):
            await self._refuse(
                "Invalid 'item.type': use 'message' or 'function_call_output'.",
                client_id,
                param="item.type",
            )
            return
        data = {**item, "id": item.get("id") or new_id("item"), "object": "realtime.item"}
        if item["type"] == "function_call_output":
            text = str(item.get("output", ""))
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not any(
                i.data.get("type") == "function_call" and i.data.get("call_id") == call_id
                for i in self.items
            ):
                await self._refuse(
                    f"Tool call ID '{item.get('call_id')}' not found in conversation.",
                    client_id,
                    param="item.call_id",
                )
                return
        else:
            content = item.get("content")
            parts: list[Any] = content if isinstance(content, list) else []
            text = " ".join(
                str(p.get("text", "")) for p in parts if isinstance(p, dict) and "text" in p
            )
            data.setdefault("role", "user")
        data["status"] = "completed"
        await self._add_item(Item(data=data, text=text), event.get("previous_item_id"))

    async def _item_truncate(self, event: dict[str, Any], client_id: str | None) -> None:
        item = self._find(event.get("item_id"))
        end_ms = event.get("audio_end_ms")
        if item is None or item.data.get("role") != "assistant":
            await self._refuse(
                f"Item with item_id '{event.get('item_id')}' not found or not an assistant "
                "message.",
                client_id,
                param="item_id",
            )
            return
        if not isinstance(end_ms, int) or not 0 <= end_ms <= duration_ms(item.audio):
            await self._refuse(
                f"Audio content of {duration_ms(item.audio)}ms is shorter than {end_ms}ms.",
                client_id,
                param="audio_end_ms",
            )
            return
        item.audio = item.audio[: end_ms * BYTES_PER_MS]
        # What was not heard was not said: the transcript goes, as the service drops it.
        for part in item.data.get("content", []):
            part["transcript"] = None
        item.text = ""
        await self._send(
            {
                "type": "conversation.item.truncated",
                "item_id": item.id,
                "content_index": int(event.get("content_index") or 0),
                "audio_end_ms": end_ms,
            }
        )

    async def _item_delete(self, event: dict[str, Any], client_id: str | None) -> None:
        item = self._find(event.get("item_id"))
        if item is None:
            await self._refuse(
                f"Item with item_id '{event.get('item_id')}' not found.", client_id, param="item_id"
            )
            return
        self.items.remove(item)
        await self._send({"type": "conversation.item.deleted", "item_id": item.id})

    async def _item_retrieve(self, event: dict[str, Any], client_id: str | None) -> None:
        item = self._find(event.get("item_id"))
        if item is None:
            await self._refuse(
                f"Item with item_id '{event.get('item_id')}' not found.", client_id, param="item_id"
            )
            return
        await self._send({"type": "conversation.item.retrieved", "item": item.data})

    async def _response_create(self, event: dict[str, Any], client_id: str | None) -> None:
        if self.session["type"] != "realtime":
            await self._refuse("Responses are not available in a transcription session.", client_id)
            return
        if self._response is not None:
            await self._refuse(
                "Conversation already has an active response in progress: "
                f"{self._response.id}. Wait until the response is finished before creating a "
                "new one.",
                client_id,
                code="conversation_already_has_active_response",
            )
            return
        self._start_response()

    async def _response_cancel(self, event: dict[str, Any], client_id: str | None) -> None:
        if self._response is None:
            await self._refuse(
                "Cancellation failed: no active response found.",
                client_id,
                code="response_cancel_not_active",
            )
            return
        await self._cancel_response("client_cancelled")

    _HANDLERS: ClassVar[
        dict[str, Callable[[EngineSession, dict[str, Any], str | None], Awaitable[None]]]
    ] = {
        "session.update": _session_update,
        "input_audio_buffer.append": _buffer_append,
        "input_audio_buffer.commit": _buffer_commit,
        "input_audio_buffer.clear": _buffer_clear,
        "conversation.item.create": _item_create,
        "conversation.item.truncate": _item_truncate,
        "conversation.item.delete": _item_delete,
        "conversation.item.retrieve": _item_retrieve,
        "response.create": _response_create,
        "response.cancel": _response_cancel,
    }

    # -- turns ----------------------------------------------------------------------------------

    def _configure_vad(self) -> None:
        detection = self.session["audio"]["input"].get("turn_detection")
        if not detection:
            self._detector = None  # push-to-talk: the client commits
            return

        def setting(name: str, default: float) -> float:
            value = detection.get(name)
            return default if value is None else float(value)

        settings = VadSettings(
            threshold=setting("threshold", 0.5),
            prefix_padding_ms=int(setting("prefix_padding_ms", 300)),
            silence_duration_ms=int(setting("silence_duration_ms", 500)),
        )
        if self._detector is None:
            # Its clock starts where the session's input audio is now, not at zero.
            self._detector = SpeechDetector(settings, start_ms=self._audio_ms)
        elif self._detector.settings != settings:
            self._detector.settings = settings

    def _turn_setting(self, name: str) -> bool:
        detection = self.session["audio"]["input"].get("turn_detection") or {}
        return bool(detection.get(name, True))

    async def _speech_started(self, at_ms: int) -> None:
        self._speech_item_id = new_id("item")
        # The part of the buffer before the (padded) start is not this turn's audio.
        drop = max(0, at_ms - self._buffer_started_ms) * BYTES_PER_MS
        del self._buffer[:drop]
        self._buffer_started_ms = max(self._buffer_started_ms, at_ms)
        await self._send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": at_ms,
                "item_id": self._speech_item_id,
            }
        )
        if self._response is not None and self._turn_setting("interrupt_response"):
            await self._cancel_response("turn_detected")  # barge-in

    async def _speech_stopped(self, at_ms: int) -> None:
        item_id = self._speech_item_id or new_id("item")
        await self._send(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": at_ms, "item_id": item_id}
        )
        keep = max(0, at_ms - self._buffer_started_ms) * BYTES_PER_MS
        await self._commit(item_id, respond=self._turn_setting("create_response"), keep=keep)

    async def _commit(self, item_id: str, *, respond: bool, keep: int | None = None) -> None:
        audio = bytes(self._buffer if keep is None else self._buffer[:keep])
        del self._buffer[: len(audio)]
        self._buffer_started_ms += duration_ms(audio)
        self._speech_item_id = None
        previous = self.items[-1].id if self.items else None
        await self._send(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous,
                "item_id": item_id,
            }
        )
        item = Item(
            data={
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "status": "completed",
                "role": "user",
                "content": [{"type": "input_audio", "transcript": None}],
            },
            audio=audio,
        )
        await self._add_item(item, previous)
        transcription = asyncio.create_task(self._transcribe(item))
        item.transcription = transcription
        self._transcriptions.add(transcription)
        transcription.add_done_callback(self._transcriptions.discard)
        if respond and self.session["type"] == "realtime" and self._response is None:
            self._start_response()

    async def _transcribe(self, item: Item) -> None:
        try:
            language = (self.session["audio"]["input"].get("transcription") or {}).get("language")
            models = self._models
            text = await self._offload(
                lambda pcm: models.stt_for(language).transcribe(pcm), item.audio
            )
        except Exception:
            logger.exception("engine transcription failed")
            if self.session["audio"]["input"].get("transcription"):
                await self._send(
                    {
                        "type": "conversation.item.input_audio_transcription.failed",
                        "item_id": item.id,
                        "content_index": 0,
                        "error": {
                            "type": "transcription_error",
                            "code": "transcription_failed",
                            "message": "The audio could not be transcribed.",
                            "param": None,
                        },
                    }
                )
            return
        item.text = text
        item.data["content"][0]["transcript"] = text
        if not self.session["audio"]["input"].get("transcription"):
            return  # the engine needs the words; the client did not ask for them
        base = {"item_id": item.id, "content_index": 0}
        if text:
            await self._send(
                {"type": "conversation.item.input_audio_transcription.delta", **base, "delta": text}
            )
        await self._send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                **base,
                "transcript": text,
                "usage": {
                    "type": "duration",
                    "seconds": round(duration_ms(item.audio) / 1000, 3),
                },
            }
        )

    async def _add_item(self, item: Item, previous_item_id: Any = None) -> None:
        previous = previous_item_id if isinstance(previous_item_id, str) else None
        if previous is None and self.items:
            previous = self.items[-1].id
        self.items.append(item)
        await self._send(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": item.data}
        )
        if item.data.get("status") == "completed":
            await self._item_done(item)

    async def _item_done(self, item: Item) -> None:
        """conversation.item.done: sent once the item is complete (or cut short)."""
        index = next((n for n, i in enumerate(self.items) if i is item), None)
        if index is None:
            return  # deleted meanwhile
        previous = self.items[index - 1].id if index else None
        await self._send(
            {"type": "conversation.item.done", "previous_item_id": previous, "item": item.data}
        )

    # -- responses -------------------------------------------------------------------------------

    def _start_response(self) -> None:
        response = Response(id=new_id("resp"))
        self._response = response
        response.task = asyncio.create_task(self._run_response(response))

    async def _run_response(self, response: Response) -> None:
        await self._send({"type": "response.created", "response": self._response_body(response)})
        try:
            await self._respond(response)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("engine response failed")
            await self._finish(response, "failed", {"type": "failed", "error": None})
            return
        await self._finish(response, "completed", None)

    async def _respond(self, response: Response) -> None:
        last = self.items[-1] if self.items else None
        if last is not None and last.data.get("type") == "function_call_output":
            call = next(
                (i for i in self.items if i.data.get("call_id") == last.data.get("call_id")), None
            )
            question = call.text if call else ""
            sources = sources_from_tool_output(last.text)
            text = await self._offload(
                lambda: answer_from_sources(
                    question=question, sources=sources, embedder=self._models.embedder
                )
            )
            await self._say(response, text)
            return
        question = await self._question()
        tool = _search_tool(self.session)
        if tool is not None and question:
            await self._call_tool(response, tool, question)
            return
        if question:
            await self._say(
                response, f"I heard your question: {question} But no knowledge search is connected."
            )
        else:
            await self._say(response, "Sorry, I did not catch that. Could you say it again?")

    async def _question(self) -> str:
        for item in reversed(self.items):
            if item.data.get("role") == "user":
                if item.transcription is not None:
                    # The commit's own transcription: wait for it rather than run Whisper twice
                    # (shielded: cancelling the answer must not cancel the transcript).
                    await asyncio.shield(item.transcription)
                return item.text.strip()
        return ""

    async def _call_tool(self, response: Response, tool: dict[str, Any], question: str) -> None:
        name, parameter = tool["name"], tool["_parameter"]
        arguments = json.dumps({parameter: question}, ensure_ascii=False)
        call_id, item_id = new_id("call"), new_id("item")
        data = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": name,
            "call_id": call_id,
            "arguments": "",
        }
        position = {"response_id": response.id, "output_index": len(response.output)}
        await self._send({"type": "response.output_item.added", **position, "item": data})
        # The call remembers the question, to answer it when the tool's output comes back.
        call_item = Item(data=data, text=question)
        await self._add_item(call_item)
        base = {**position, "item_id": item_id, "call_id": call_id}
        await self._send(
            {"type": "response.function_call_arguments.delta", **base, "delta": arguments}
        )
        await self._send(
            {
                "type": "response.function_call_arguments.done",
                **base,
                "name": name,
                "arguments": arguments,
            }
        )
        data.update(status="completed", arguments=arguments)
        response.output.append(data)
        response.output_text_tokens += estimate_tokens(arguments)
        await self._send({"type": "response.output_item.done", **position, "item": data})
        await self._item_done(call_item)

    async def _say(self, response: Response, text: str) -> None:
        audio_out = "audio" in self.session.get("output_modalities", ["audio"])
        item_id = new_id("item")
        part_type = "audio" if audio_out else "text"
        data: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        item = Item(data=data)
        position = {"response_id": response.id, "output_index": len(response.output)}
        part = {"item_id": item_id, "content_index": 0, **position}
        # From here on a cancel closes this item (see _close_cut_item).
        response.speaking, response.speaking_part = item, part
        await self._send({"type": "response.output_item.added", **position, "item": data})
        await self._add_item(item)
        empty = {"type": part_type, "transcript": ""} if audio_out else {"type": "text", "text": ""}
        await self._send({"type": "response.content_part.added", **part, "part": empty})
        said = ""
        sentences = self._models.tts.sentences(text) or [text]
        for number, sentence in enumerate(sentences, start=1):
            piece = sentence if number == len(sentences) else f"{sentence} "
            if audio_out:
                pcm = await self._offload(self._models.tts.speak, sentence)
                item.audio += pcm
                await self._send(
                    {"type": "response.output_audio_transcript.delta", **part, "delta": piece}
                )
                step = AUDIO_CHUNK_MS * BYTES_PER_MS
                for start in range(0, len(pcm), step):
                    chunk = base64.b64encode(pcm[start : start + step]).decode()
                    await self._send(
                        {"type": "response.output_audio.delta", **part, "delta": chunk}
                    )
            else:
                await self._send({"type": "response.output_text.delta", **part, "delta": piece})
            said += piece
            item.text = said.strip()  # what has been said, should it be cut short
        said = said.strip()
        item.text = said
        if audio_out:
            await self._send({"type": "response.output_audio.done", **part})
            await self._send(
                {"type": "response.output_audio_transcript.done", **part, "transcript": said}
            )
            final = {"type": "audio", "transcript": said}
        else:
            await self._send({"type": "response.output_text.done", **part, "text": said})
            final = {"type": "text", "text": said}
        await self._send({"type": "response.content_part.done", **part, "part": final})
        data.update(status="completed", content=[final])
        response.speaking = None
        response.output.append(data)
        response.output_text_tokens += estimate_tokens(said)
        response.output_audio_ms += duration_ms(item.audio)
        await self._send({"type": "response.output_item.done", **position, "item": data})
        await self._item_done(item)

    async def _cancel_response(self, reason: str) -> None:
        response = self._response
        if response is None:
            return
        if response.task is not None:
            response.task.cancel()
            await asyncio.gather(response.task, return_exceptions=True)
        cut = response.speaking
        if cut is not None:
            await self._close_cut_item(response, cut)
        await self._finish(response, "cancelled", {"type": "cancelled", "reason": reason})

    async def _close_cut_item(self, response: Response, cut: Item) -> None:
        """Close the answer being spoken as the service does: its audio, transcript, part and
        item end here, marked incomplete; the client then truncates it to what was played."""
        audio_out = "audio" in self.session.get("output_modalities", ["audio"])
        part = response.speaking_part
        if audio_out:
            final = {"type": "audio", "transcript": cut.text}
            await self._send({"type": "response.output_audio.done", **part})
            await self._send(
                {"type": "response.output_audio_transcript.done", **part, "transcript": cut.text}
            )
        else:
            final = {"type": "text", "text": cut.text}
            await self._send({"type": "response.output_text.done", **part, "text": cut.text})
        await self._send({"type": "response.content_part.done", **part, "part": final})
        cut.data.update(status="incomplete", content=[final])
        position = {k: part[k] for k in ("response_id", "output_index")}
        await self._send({"type": "response.output_item.done", **position, "item": cut.data})
        await self._item_done(cut)
        response.output.append(cut.data)
        response.output_text_tokens += estimate_tokens(cut.text)
        response.output_audio_ms += duration_ms(cut.audio)
        response.speaking = None

    async def _finish(
        self, response: Response, status: str, details: dict[str, Any] | None
    ) -> None:
        if self._response is not response:
            return  # already finished (cancelled meanwhile)
        self._response = None
        body = self._response_body(response, status=status, details=details)
        await self._send({"type": "response.done", "response": body})
        total = body["usage"]["total_tokens"]
        await self._send(
            {
                "type": "rate_limits.updated",
                "rate_limits": [
                    {
                        "name": "requests",
                        "limit": 10_000,
                        "remaining": 9_999,
                        "reset_seconds": 0.006,
                    },
                    {
                        "name": "tokens",
                        "limit": 1_000_000,
                        "remaining": 1_000_000 - total,
                        "reset_seconds": 0.06,
                    },
                ],
            }
        )

    def _response_body(
        self,
        response: Response,
        *,
        status: str = "in_progress",
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        input_text = sum(estimate_tokens(i.text) for i in self.items if not i.audio)
        input_audio = sum(
            audio_tokens(duration_ms(i.audio), per_token_ms=100)
            for i in self.items
            if i.audio and i.data.get("role") == "user"
        )
        input_audio += sum(
            audio_tokens(duration_ms(i.audio), per_token_ms=50)
            for i in self.items
            if i.audio and i.data.get("role") == "assistant"
        )
        output_audio = audio_tokens(response.output_audio_ms, per_token_ms=50)
        output_text = response.output_text_tokens
        return {
            "object": "realtime.response",
            "id": response.id,
            "status": status,
            "status_details": details,
            "output": response.output,
            "conversation_id": None,
            "output_modalities": self.session.get("output_modalities", ["audio"]),
            "max_output_tokens": self.session.get("max_output_tokens", "inf"),
            "audio": {"output": self.session["audio"].get("output")},
            "usage": {
                "total_tokens": input_text + input_audio + output_text + output_audio,
                "input_tokens": input_text + input_audio,
                "output_tokens": output_text + output_audio,
                "input_token_details": {
                    "text_tokens": input_text,
                    "audio_tokens": input_audio,
                    "image_tokens": 0,
                    "cached_tokens": 0,
                    "cached_tokens_details": {
                        "text_tokens": 0,
                        "audio_tokens": 0,
                        "image_tokens": 0,
                    },
                },
                "output_token_details": {"text_tokens": output_text, "audio_tokens": output_audio},
            },
            "metadata": None,
        }

    # -- helpers --------------------------------------------------------------------------------

    async def _send(self, event: dict[str, Any]) -> None:
        if self._stopped:
            return  # the socket is gone: a late transcription or answer has nobody to reach
        try:
            await self._send_event({"event_id": new_id("event"), **event})
        except Exception:
            # The transport failed (the client vanished mid-send): stop the session's work.
            logger.info("engine client gone; dropping %s", event.get("type"))
            self._stopped = True

    async def _refuse(
        self,
        message: str,
        client_id: str | None,
        *,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        await self._send(error_event(message, code=code, param=param, client_event_id=client_id))

    async def _offload(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._models.pool, fn, *args)

    def _find(self, item_id: Any) -> Item | None:
        return next((i for i in self.items if i.id == item_id), None)


def _search_tool(session: dict[str, Any]) -> dict[str, Any] | None:
    """The function tool the engine can call with the question: the first one taking exactly
    one string parameter (Koe's search_knowledge is such a tool)."""
    if session.get("tool_choice") == "none":
        return None
    for tool in session.get("tools") or []:
        if not isinstance(tool, dict) or tool.get("type") != "function":
            continue
        properties = (tool.get("parameters") or {}).get("properties") or {}
        strings = [
            k for k, v in properties.items() if isinstance(v, dict) and v.get("type") == "string"
        ]
        if len(properties) == 1 and len(strings) == 1:
            return {**tool, "_parameter": strings[0]}
    return None


def _session_problem(session: dict[str, Any]) -> tuple[str, str] | None:
    """Why a session cannot be used, as the service words it (message, param)."""
    audio = session.get("audio") or {}
    if not isinstance(audio, dict) or not all(
        isinstance(audio.get(d) or {}, dict) for d in ("input", "output")
    ):
        return ("Invalid type for 'audio': expected an object.", "session.audio")
    for direction in ("input", "output"):
        fmt = (audio.get(direction) or {}).get("format")
        if isinstance(fmt, dict) and (
            fmt.get("type") != "audio/pcm" or fmt.get("rate", 24000) != 24000
        ):
            return (
                "Invalid audio format: the local engine speaks audio/pcm at 24000 Hz only.",
                f"session.audio.{direction}.format",
            )
    for direction in ("input", "output"):
        fmt = (audio.get(direction) or {}).get("format")
        if fmt is not None and not isinstance(fmt, dict):
            return (
                "Invalid type for 'format': expected an object.",
                f"session.audio.{direction}.format",
            )
    detection = (audio.get("input") or {}).get("turn_detection")
    if detection is not None and not isinstance(detection, dict):
        return (
            "Invalid type for 'turn_detection': expected an object or null.",
            "session.audio.input.turn_detection",
        )
    if detection is not None and detection.get("type") not in ("server_vad", "semantic_vad"):
        return (
            f"Invalid value: '{detection.get('type')}'. Supported values are: 'server_vad' and "
            "'semantic_vad'.",
            "session.audio.input.turn_detection.type",
        )
    if detection is not None:
        for name, low, high in (
            ("threshold", 0.0, 1.0),
            ("prefix_padding_ms", 0, 10_000),
            ("silence_duration_ms", 0, 10_000),
        ):
            value = detection.get(name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not low <= value <= high
            ):
                return (
                    f"Invalid value for '{name}': expected a number from {low} to {high}.",
                    f"session.audio.input.turn_detection.{name}",
                )
    transcription = (audio.get("input") or {}).get("transcription")
    language = transcription.get("language") if isinstance(transcription, dict) else None
    if language and language not in LANGUAGES:
        return (
            f"Invalid value: '{str(language)[:16]}'. The offline engine transcribes only "
            f"{', '.join(LANGUAGES)} (its Whisper models are {MODEL_NAME} and "
            f"{MULTILINGUAL_MODEL_NAME}): this language is not available offline. Use Azure "
            "OpenAI or OpenAI for it.",
            "session.audio.input.transcription.language",
        )
    modalities = session.get("output_modalities")
    if modalities is not None and modalities not in (["audio"], ["text"]):
        return (
            "Invalid 'output_modalities': use ['audio'] or ['text'].",
            "session.output_modalities",
        )
    return None
