"""The model side of bench/gateway.py: a Realtime GA server that timestamps frames.

Run by bench/gateway.py as its own process: python bench/gateway_upstream.py PORT

Every audio frame carries, in its first 8 bytes, the CLOCK_MONOTONIC nanoseconds at which it
was sent (the clock is the same in every process of this machine). For each frame of
microphone audio that arrives here (`input_audio_buffer.append`) the server notes how long it
took; its answers' audio deltas carry the time they left, for the clients to measure the way
back. Each session talks like a model: it hears a turn, then answers with 3 s of speech sent in
150 ms chunks at three times real time (as the service sends audio faster than it is spoken),
with transcript deltas, the `.done` events and `response.done` with usage; then it listens.

`/control` answers "stats" with the latencies since the last "reset" (JSON, milliseconds).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import random
import sys
import time
from array import array

from websockets.asyncio.server import ServerConnection, serve

CHUNK_MS = 150
ANSWER_MS = 3000
SPEED = 3.0  # times real time
LISTEN_S = 3.0
BYTES_PER_MS = 48

_ids = itertools.count(1)
_latencies_ms = array("d")


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_ids)}"


def stamped(nbytes: int) -> bytes:
    return time.monotonic_ns().to_bytes(8, "little") + bytes(nbytes - 8)


async def handler(ws: ServerConnection) -> None:
    assert ws.request is not None
    if ws.request.path.startswith("/control"):
        await control(ws)
        return
    await ws.send(
        json.dumps(
            {"type": "session.created", "session": {"id": new_id("sess"), "type": "realtime"}}
        )
    )
    speaker = asyncio.create_task(talk(ws))
    try:
        async for raw in ws:
            if not isinstance(raw, str):
                continue
            event = json.loads(raw)
            if event.get("type") == "input_audio_buffer.append":
                sent = int.from_bytes(base64.b64decode(event["audio"][:12])[:8], "little")
                _latencies_ms.append((time.monotonic_ns() - sent) / 1e6)
                continue
            kind = event.get("type")
            if kind == "session.update":
                await ws.send(json.dumps({"type": "session.updated", "session": event["session"]}))
            elif kind == "conversation.item.create":
                item = {**event["item"], "id": event["item"].get("id") or new_id("item")}
                await ws.send(json.dumps({"type": "conversation.item.added", "item": item}))
    except Exception:  # noqa: S110 (a closed client is the normal end)
        pass
    finally:
        speaker.cancel()


async def talk(ws: ServerConnection) -> None:
    """Hear a turn, answer it, listen; over and over (staggered across sessions)."""
    await asyncio.sleep(random.uniform(0, LISTEN_S))  # noqa: S311
    while True:
        user_item, answer_item, response = new_id("item"), new_id("item"), new_id("resp")
        for event in (
            {
                "type": "input_audio_buffer.speech_started",
                "item_id": user_item,
                "audio_start_ms": 0,
            },
            {
                "type": "input_audio_buffer.speech_stopped",
                "item_id": user_item,
                "audio_end_ms": 1000,
            },
            {"type": "input_audio_buffer.committed", "item_id": user_item},
            {
                "type": "conversation.item.added",
                "item": {"id": user_item, "type": "message", "role": "user", "content": []},
            },
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": user_item,
                "transcript": "How many days of paid leave do I get?",
            },
            {"type": "response.created", "response": {"id": response}},
            {
                "type": "conversation.item.added",
                "item": {"id": answer_item, "type": "message", "role": "assistant"},
            },
        ):
            await ws.send(json.dumps(event))
        for _ in range(ANSWER_MS // CHUNK_MS):
            delta = base64.b64encode(stamped(CHUNK_MS * BYTES_PER_MS)).decode()
            await ws.send(
                json.dumps(
                    {
                        "type": "response.output_audio.delta",
                        "response_id": response,
                        "item_id": answer_item,
                        "content_index": 0,
                        "delta": delta,
                    }
                )
            )
            await ws.send(
                json.dumps(
                    {
                        "type": "response.output_audio_transcript.delta",
                        "item_id": answer_item,
                        "delta": "twenty days ",
                    }
                )
            )
            await asyncio.sleep(CHUNK_MS / 1000 / SPEED)
        for event in (
            {"type": "response.output_audio.done", "item_id": answer_item},
            {
                "type": "response.output_audio_transcript.done",
                "item_id": answer_item,
                "transcript": "You get twenty days of paid leave.",
            },
            {
                "type": "response.done",
                "response": {
                    "id": response,
                    "status": "completed",
                    "output": [{"id": answer_item, "type": "message"}],
                    "usage": {"input_tokens": 120, "output_tokens": 90},
                },
            },
        ):
            await ws.send(json.dumps(event))
        await asyncio.sleep(LISTEN_S)


async def control(ws: ServerConnection) -> None:
    async for message in ws:
        if message == "reset":
            del _latencies_ms[:]
            await ws.send("ok")
        elif message == "stats":
            await ws.send(json.dumps(list(_latencies_ms)))


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, max_size=2**24, compression=None):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
