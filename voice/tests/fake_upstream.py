"""A scripted Realtime GA server on 127.0.0.1 that records everything it receives.

It behaves like the real service where the gateway's logic depends on it: `session.created`
first, `session.updated` after an update, a committed buffer becomes a user item with its
transcription, `response.create` streams an answer (audio deltas interleaved with transcript
deltas, then the `.done` events and `response.done` with usage) or, when a tool plan is set,
function calls that wait for their outputs. A second `response.create` during a response fails
with `conversation_already_has_active_response`. Tests can also push any event, expire the
session (`error` session_expired then close 1001) or drop the connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):05d}"


@dataclass
class Connection:
    ws: ServerConnection
    headers: dict[str, str]
    path: str
    received: list[dict[str, Any]] = field(default_factory=list)
    audio: bytearray = field(default_factory=bytearray)
    response_active: bool = False
    last_item_id: str | None = None
    function_outputs: list[dict[str, Any]] = field(default_factory=list)
    text_only: bool = False  # the session asked for output_modalities ["text"]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.received if e.get("type") == kind]


@dataclass
class FakeUpstream:
    # What the user "said" when audio is committed.
    user_transcript: str = "How many days of paid leave do I get?"
    # The assistant's answer; called with the connection so it can quote tool outputs.
    answer: Callable[[Connection], str] = lambda conn: "You get twenty days."
    answer_audio_ms: int = 600
    # Function calls for the next answer: list of (name, arguments JSON). Used once per turn.
    tool_plan: list[tuple[str, str]] = field(default_factory=list)
    # Seconds to wait before each streamed audio chunk (lets tests barge in mid-answer).
    chunk_delay_s: float = 0.0
    refuse_connections: bool = False
    # Answer session.update with an error (a policy the service will not take).
    refuse_policy: bool = False
    # Refuse the next response.create with an error naming its event_id (e.g. a rate limit).
    reject_next_response: bool = False
    # Accept the policy, then drop the connection at once (a service in trouble).
    drop_after_update: bool = False
    # Or say session_expired at once (a provider in trouble).
    expire_after_update: bool = False
    # Refuse this many of the next conversation.item.create events.
    refuse_item_creates: int = 0
    # Accept this many of the next connections and then say nothing at all (a hung service).
    silent_connections: int = 0
    # Take this many of the next response.create events and never answer them (hung mid-turn).
    ignore_responses: int = 0

    connections: list[Connection] = field(default_factory=list)
    _server: Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> FakeUpstream:
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=2**22)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/v1/realtime?model=fake-realtime"

    @property
    def current(self) -> Connection:
        return self.connections[-1]

    async def wait_for(self, kind: str, *, count: int = 1, within: float = 5.0) -> Connection:
        """Wait until the newest connection has received `count` events of `kind`."""

        async def reached() -> Connection:
            while True:
                if self.connections and len(self.current.of_type(kind)) >= count:
                    return self.current
                await asyncio.sleep(0.01)

        return await asyncio.wait_for(reached(), within)

    async def wait_connections(self, count: int, within: float = 5.0) -> None:
        async def reached() -> None:
            while len(self.connections) < count:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(reached(), within)

    async def push(self, event: dict[str, Any]) -> None:
        await self.current.ws.send(json.dumps(event))

    async def expire(self) -> None:
        """What Azure and OpenAI do at the session limit."""
        await self.push(
            {
                "type": "error",
                "event_id": new_id("event"),
                "error": {
                    "type": "invalid_request_error",
                    "code": "session_expired",
                    "message": "Your session hit the maximum duration of 30 minutes.",
                },
            }
        )
        await self.current.ws.close(1001, "session expired")

    async def drop(self) -> None:
        """The connection breaks without a goodbye."""
        self.current.ws.transport.abort()

    async def babble(self, *frames: str | bytes) -> None:
        """Frames that are not Realtime events (a broken proxy, a buggy service)."""
        for frame in frames:
            await self.current.ws.send(frame)

    # -- protocol ---------------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        if self.refuse_connections:
            await ws.close(1011, "unavailable")
            return
        request = ws.request
        assert request is not None
        conn = Connection(ws=ws, headers=dict(request.headers), path=request.path)
        self.connections.append(conn)
        if self.silent_connections:
            self.silent_connections -= 1
            await ws.wait_closed()
            return
        await ws.send(
            json.dumps(
                {
                    "type": "session.created",
                    "event_id": new_id("event"),
                    "session": {"id": new_id("sess"), "type": "realtime", "model": "fake"},
                }
            )
        )
        with contextlib.suppress(Exception):
            async for raw in ws:
                event = json.loads(raw)
                conn.received.append(event)
                await self._on_event(conn, event)

    async def _on_event(self, conn: Connection, event: dict[str, Any]) -> None:
        kind = event.get("type")
        send = conn.ws.send
        if kind == "session.update":
            if self.refuse_policy:
                await self._error(conn, "invalid_value", "Invalid value", event)
                return
            conn.text_only = event["session"].get("output_modalities") == ["text"]
            await send(json.dumps({"type": "session.updated", "session": event["session"]}))
            if self.drop_after_update:
                conn.ws.transport.abort()
            if self.expire_after_update:
                await self.expire()
        elif kind == "input_audio_buffer.append":
            conn.audio.extend(base64.b64decode(event["audio"]))
        elif kind == "input_audio_buffer.commit":
            await self._user_turn(conn)
        elif kind == "conversation.item.create":
            if self.refuse_item_creates:
                self.refuse_item_creates -= 1
                await self._error(conn, "invalid_value", "Invalid item", event)
                return
            item = event["item"]
            item_id = item.get("id") or new_id("item")
            if item.get("type") == "function_call_output":
                conn.function_outputs.append(item)
            await send(
                json.dumps(
                    {
                        "type": "conversation.item.added",
                        "previous_item_id": conn.last_item_id,
                        "item": {**item, "id": item_id},
                    }
                )
            )
            conn.last_item_id = item_id
        elif kind == "response.create":
            if self.ignore_responses:
                self.ignore_responses -= 1
                return
            if self.reject_next_response:
                self.reject_next_response = False
                await self._error(conn, "rate_limit_exceeded", "Rate limit reached", event)
                return
            if conn.response_active:
                await self._error(
                    conn,
                    "conversation_already_has_active_response",
                    "Conversation already has an active response",
                )
                return
            conn.response_active = True
            task = asyncio.create_task(self._respond(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _respond_in_text(
        self, conn: Connection, response_id: str, item_id: str, text: str
    ) -> None:
        """A text-mode answer (output_modalities ["text"]): text deltas, no audio."""
        half = len(text) // 2
        for part in (text[:half], text[half:]):
            await conn.ws.send(
                json.dumps(
                    {
                        "type": "response.output_text.delta",
                        "response_id": response_id,
                        "item_id": item_id,
                        "content_index": 0,
                        "delta": part,
                    }
                )
            )
        await conn.ws.send(
            json.dumps({"type": "response.output_text.done", "item_id": item_id, "text": text})
        )
        await _response_done(conn, response_id, item_id, usage(input_tokens=900, output_tokens=120))

    async def _error(
        self, conn: Connection, code: str, message: str, event: dict[str, Any] | None = None
    ) -> None:
        """An `error` event as the service sends it, naming the client event it is about."""
        error: dict[str, Any] = {"type": "invalid_request_error", "code": code, "message": message}
        if event is not None:
            error["event_id"] = event.get("event_id")
        await conn.ws.send(json.dumps({"type": "error", "error": error}))

    async def _user_turn(self, conn: Connection) -> None:
        item_id = new_id("item")
        events = [
            {
                "type": "input_audio_buffer.committed",
                "item_id": item_id,
                "previous_item_id": conn.last_item_id,
            },
            {
                "type": "conversation.item.added",
                "previous_item_id": conn.last_item_id,
                "item": {
                    "id": item_id,
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_audio", "transcript": None}],
                },
            },
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": self.user_transcript,
            },
        ]
        conn.last_item_id = item_id
        conn.audio.clear()
        for e in events:
            await conn.ws.send(json.dumps(e))

    async def _respond(self, conn: Connection) -> None:
        send = conn.ws.send
        response_id = new_id("resp")
        await send(
            json.dumps(
                {
                    "type": "response.created",
                    "response": {"id": response_id, "status": "in_progress"},
                }
            )
        )
        if self.tool_plan:
            plan, self.tool_plan = self.tool_plan, []
            output = []
            for name, arguments in plan:
                item_id, call_id = new_id("item"), new_id("call")
                item = {
                    "id": item_id,
                    "type": "function_call",
                    "name": name,
                    "call_id": call_id,
                    "arguments": arguments,
                }
                output.append(item)
                await send(
                    json.dumps(
                        {
                            "type": "response.output_item.added",
                            "response_id": response_id,
                            "item": {**item, "arguments": ""},
                        }
                    )
                )
                await send(
                    json.dumps(
                        {
                            "type": "response.function_call_arguments.delta",
                            "item_id": item_id,
                            "call_id": call_id,
                            "delta": arguments,
                        }
                    )
                )
                await send(
                    json.dumps(
                        {
                            "type": "response.function_call_arguments.done",
                            "item_id": item_id,
                            "call_id": call_id,
                            "name": name,
                            "arguments": arguments,
                        }
                    )
                )
            conn.response_active = False
            await send(
                json.dumps(
                    {
                        "type": "response.done",
                        "response": {
                            "id": response_id,
                            "status": "completed",
                            "output": output,
                            "usage": usage(input_tokens=50, output_tokens=12),
                        },
                    }
                )
            )
            return
        text = self.answer(conn)
        item_id = new_id("item")
        await send(
            json.dumps(
                {
                    "type": "conversation.item.added",
                    "previous_item_id": conn.last_item_id,
                    "item": {"id": item_id, "type": "message", "role": "assistant"},
                }
            )
        )
        conn.last_item_id = item_id
        if conn.text_only:
            await self._respond_in_text(conn, response_id, item_id, text)
            return
        chunks = max(1, self.answer_audio_ms // 100)
        words = text.split(" ")
        per_chunk = max(1, -(-len(words) // chunks))
        for i in range(chunks):
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
            pcm = b"\x10\x00" * 2400  # 100 ms
            await send(
                json.dumps(
                    {
                        "type": "response.output_audio.delta",
                        "response_id": response_id,
                        "item_id": item_id,
                        "content_index": 0,
                        "delta": base64.b64encode(pcm).decode(),
                    }
                )
            )
            part = " ".join(words[i * per_chunk : (i + 1) * per_chunk])
            if part:
                await send(
                    json.dumps(
                        {
                            "type": "response.output_audio_transcript.delta",
                            "item_id": item_id,
                            "delta": part + " ",
                        }
                    )
                )
        await send(json.dumps({"type": "response.output_audio.done", "item_id": item_id}))
        await send(
            json.dumps(
                {
                    "type": "response.output_audio_transcript.done",
                    "item_id": item_id,
                    "transcript": text,
                }
            )
        )
        await _response_done(conn, response_id, item_id, usage(input_tokens=200, output_tokens=80))
        await send(
            json.dumps(
                {
                    "type": "rate_limits.updated",
                    "rate_limits": [
                        {
                            "name": "tokens",
                            "limit": 100000,
                            "remaining": 99000,
                            "reset_seconds": 1.0,
                        }
                    ],
                }
            )
        )


async def _response_done(
    conn: Connection, response_id: str, item_id: str, spent: dict[str, Any]
) -> None:
    """The end of an answer: the connection takes a new response.create from here on."""
    conn.response_active = False
    await conn.ws.send(
        json.dumps(
            {
                "type": "response.done",
                "response": {
                    "id": response_id,
                    "status": "completed",
                    "output": [{"id": item_id, "type": "message", "role": "assistant"}],
                    "usage": spent,
                },
            }
        )
    )


def usage(*, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_token_details": {
            "text_tokens": input_tokens // 2,
            "audio_tokens": input_tokens // 2,
            "cached_tokens": 0,
        },
        "output_token_details": {
            "text_tokens": output_tokens // 4,
            "audio_tokens": output_tokens - output_tokens // 4,
        },
    }
