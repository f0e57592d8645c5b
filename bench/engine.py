"""How fast Koe's offline engine answers, with 1, 2 and 4 sessions at once.

Run: .venv/bin/python bench/engine.py [--rounds 5]

Starts the engine on 127.0.0.1 (its stand-alone server, the same session code as in the
portal) and, for each concurrency, opens that many sessions that each speak a question in real
time (100 ms frames every 100 ms, the speech made by the engine's own TTS), let the server VAD
end the turn (silence_duration_ms 500), answer the tool call at once with a passage as Koe's
gateway would, and wait for the first audio byte of the answer. It prints, per concurrency:

  end of speech -> first audio   from the last frame with speech to the first audio delta
  speech_stopped -> first audio  the same, after the VAD's silence window
  STT / TTS x real time          seconds of work per second of audio, in this run's load

Ratios are against one session, all in this one run.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.own_database import django_in_own_database

django_in_own_database("koe_bench_engine")  # the engine itself needs no database

from websockets.asyncio.client import connect

from voice.engine.audio import BYTES_PER_MS, duration_ms
from voice.engine.server import engine_models_default, engine_serve

QUESTION = "How many days of paid leave do I get?"
TOOL = {
    "type": "function",
    "name": "search_knowledge",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
}
PASSAGES = json.dumps(
    {
        "passages": [
            {
                "source": "Leave and Holidays",
                "text": "Full-time employees receive twenty days of annual paid leave each year. "
                "Unused days carry over for one year.",
            }
        ]
    }
)
FRAME_MS = 100


async def one_session(url: str, speech: bytes) -> tuple[float, float]:
    async with connect(url, additional_headers={"api-key": "bench"}, compression=None) as ws:
        await ws.recv()  # session.created
        await ws.send(
            json.dumps({"type": "session.update", "session": {"type": "realtime", "tools": [TOOL]}})
        )
        audio = b"\0\0" * 24 * 400 + speech + b"\0\0" * 24 * 1500
        speech_end_offset = 400 + duration_ms(speech)
        sent_ms = 0
        speech_ended_at = stopped_at = 0.0
        first_audio: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        async def listen() -> None:
            nonlocal stopped_at
            async for raw in ws:
                event = json.loads(raw)
                kind = event["type"]
                if kind == "input_audio_buffer.speech_stopped":
                    stopped_at = time.perf_counter()
                elif kind == "response.function_call_arguments.done":
                    item = {
                        "type": "function_call_output",
                        "call_id": event["call_id"],
                        "output": PASSAGES,
                    }
                    await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
                    await ws.send(json.dumps({"type": "response.create"}))
                elif kind == "response.output_audio.delta" and not first_audio.done():
                    first_audio.set_result(time.perf_counter())
                    return

        listener = asyncio.create_task(listen())
        step = FRAME_MS * BYTES_PER_MS
        started = time.perf_counter()
        for start in range(0, len(audio), step):
            if first_audio.done():
                break
            frame = audio[start : start + step]
            await ws.send(
                json.dumps(
                    {"type": "input_audio_buffer.append", "audio": base64.b64encode(frame).decode()}
                )
            )
            sent_ms += duration_ms(frame)
            if not speech_ended_at and sent_ms >= speech_end_offset:
                speech_ended_at = time.perf_counter()
            # Real time: the next frame leaves when a microphone would have produced it.
            await asyncio.sleep(max(0.0, started + sent_ms / 1000 - time.perf_counter()))
        answered = await asyncio.wait_for(first_audio, 30)
        listener.cancel()
        return answered - speech_ended_at, answered - stopped_at


def real_time_factors(models, speech: bytes, sessions: int) -> tuple[float, float]:
    """Seconds of STT and TTS work per second of audio with `sessions` running at once."""
    with ThreadPoolExecutor(sessions) as pool:
        started = time.perf_counter()
        list(pool.map(lambda _: models.stt.transcribe(speech), range(sessions)))
        stt = (time.perf_counter() - started) / sessions / (duration_ms(speech) / 1000)
        sentence = "Full-time employees receive twenty days of annual paid leave each year."
        started = time.perf_counter()
        spoken = list(pool.map(lambda _: models.tts.speak(sentence), range(sessions)))
        tts = (time.perf_counter() - started) / sessions / (duration_ms(spoken[0]) / 1000)
    return stt, tts


async def main(rounds: int) -> None:
    models = engine_models_default(workers=2)
    speech = models.tts.speak(QUESTION)
    models.stt.transcribe(speech)  # warm both models
    server = await engine_serve(host="127.0.0.1", port=0, key="bench", models=models)
    port = next(iter(server.sockets)).getsockname()[1]
    url = f"ws://127.0.0.1:{port}/v1/realtime?model=koe-local"
    rows = []
    for sessions in (1, 2, 4):
        after_speech, after_stop = [], []
        for _ in range(rounds):
            results = await asyncio.gather(*(one_session(url, speech) for _ in range(sessions)))
            after_speech += [r[0] for r in results]
            after_stop += [r[1] for r in results]
        stt, tts = real_time_factors(models, speech, sessions)
        rows.append((sessions, after_speech, after_stop, stt, tts))
    server.close()
    await server.wait_closed()

    print(f"offline engine, {rounds} rounds per row, 2 engine workers, 2 cores")
    print(
        f"{'sessions':>8} {'speech end->audio p50':>22} {'p95':>6} {'x':>5} "
        f"{'speech_stopped->audio p50':>26} {'p95':>6} {'STT xRT':>8} {'TTS xRT':>8}"
    )
    base = statistics.median(rows[0][1])
    for sessions, after_speech, after_stop, stt, tts in rows:
        p50 = statistics.median(after_speech)
        p95 = sorted(after_speech)[max(0, int(len(after_speech) * 0.95) - 1)]
        s50 = statistics.median(after_stop)
        s95 = sorted(after_stop)[max(0, int(len(after_stop) * 0.95) - 1)]
        print(
            f"{sessions:>8} {p50 * 1000:>19.0f} ms {p95 * 1000:>6.0f} {p50 / base:>5.2f} "
            f"{s50 * 1000:>23.0f} ms {s95 * 1000:>6.0f} {stt:>8.3f} {tts:>8.3f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))
