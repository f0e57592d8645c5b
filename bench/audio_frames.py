"""Assistant audio to the browser: binary WebSocket frames or JSON with base64, measured.

Run: .venv/bin/python bench/audio_frames.py [seconds_of_audio]

Sends the same PCM16 24 kHz audio over a real WebSocket on 127.0.0.1 both ways, in 100 ms
chunks (the size upstream deltas arrive in), and reports bytes on the wire, the server's CPU
time to produce the frames, and the wall time until the client has decoded everything to PCM.
Both start from the base64 text that upstream deltas carry.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import statistics
import sys
import time

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

CHUNK = b"\x12\x34" * 2400  # 100 ms of PCM16 mono 24 kHz


# Upstream deltas arrive as base64 inside JSON: both ways start from that string.
UPSTREAM_DELTA = base64.b64encode(CHUNK).decode()


def frames_binary(chunks: int) -> list[str | bytes]:
    # Koe's choice: decode once on the server, send raw PCM.
    return [base64.b64decode(UPSTREAM_DELTA) for _ in range(chunks)]


def frames_json(chunks: int) -> list[str | bytes]:
    # The alternative: pass the base64 text through inside a JSON event.
    return [
        json.dumps({"type": "audio", "item_id": "k_abcdefghijkl", "audio": UPSTREAM_DELTA})
        for _ in range(chunks)
    ]


async def run(kind: str, chunks: int) -> tuple[int, float, float]:
    produce = frames_binary if kind == "binary" else frames_json
    cpu = 0.0

    async def handler(ws: ServerConnection) -> None:
        nonlocal cpu
        start = time.process_time()
        frames = produce(chunks)
        cpu = time.process_time() - start
        for frame in frames:
            await ws.send(frame)
        await ws.close()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        wire = 0
        pcm = 0
        t0 = time.perf_counter()
        async with connect(f"ws://127.0.0.1:{port}", compression=None, max_size=None) as ws:
            async for message in ws:
                wire += len(message) if isinstance(message, bytes) else len(message.encode())
                if isinstance(message, bytes):
                    pcm += len(message)
                else:
                    pcm += len(base64.b64decode(json.loads(message)["audio"]))
        elapsed = time.perf_counter() - t0
    assert pcm == chunks * len(CHUNK)
    return wire, cpu, elapsed


async def main(seconds: int, rounds: int = 5) -> None:
    chunks = seconds * 10
    results: dict[str, list[tuple[int, float, float]]] = {"binary": [], "json+base64": []}
    for _ in range(rounds):
        results["binary"].append(await run("binary", chunks))
        results["json+base64"].append(await run("json", chunks))
    base = {
        k: statistics.median(v[i] for v in results["binary"])
        for i, k in enumerate(["wire", "cpu", "wall"])
    }
    print(
        f"assistant audio to the browser: {seconds} s of PCM16 24 kHz in 100 ms frames, "
        f"median of {rounds} runs, {os.cpu_count()} cores"
    )
    print(
        f"{'format':<14} {'wire bytes':>12} {'x':>6} {'server cpu ms':>14} {'x':>6} "
        f"{'wall ms':>9} {'x':>6}"
    )
    for name, runs in results.items():
        wire = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        wall = statistics.median(r[2] for r in runs)
        print(
            f"{name:<14} {wire:>12.0f} {wire / base['wire']:>6.2f} {cpu * 1000:>14.2f} "
            f"{cpu / max(base['cpu'], 1e-9):>6.1f} {wall * 1000:>9.1f} {wall / base['wall']:>6.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 60))
