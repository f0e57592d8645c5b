"""What Koe's gateway adds to every audio frame, and how many sessions one process holds.

Run: .venv/bin/python bench/gateway.py [--sessions 1,50,200,500] [--seconds 10]

One run starts, in its own embedded database:
  - the fake model (bench/gateway_upstream.py) in its own process,
  - one Koe web process (daphne portal.asgi, KOE_ENV=production, recording of turn audio on),
    pinned to CPU 0,
  - N simulated browsers in this process, pinned to CPU 1 with the fake model: each signed in
    (its own user and session cookie), streaming 20 ms microphone frames in real time and
    receiving the model's answers (3 s of speech in 150 ms chunks at 3x real time, then 3 s
    of listening).
For each N the same browsers then talk to the fake model directly, speaking its protocol
(base64 JSON, as Koe would): that is the baseline. Every frame carries the time it was sent, so
the table shows, per direction, the latency through Koe, the baseline's, and what Koe adds, at
p50 and p99; the CPU time and memory of the Koe process per session; and the largest N whose
p99 through Koe stays under --max-p99-ms (50). Figures are from this one run.

With --koe URL the browsers talk to a Koe that is already running (e.g. several processes
behind nginx, see bench/scaleout.py) and CPU/memory are those of --pids.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.own_database import django_in_own_database

DATABASE = "koe_bench_gateway"
FRAME = {"ms": 20}  # the microphone frame; --frame-ms (Koe's page sends 40 ms)
ERROR_CODES: Counter[str] = Counter()  # what Koe's error events said, for the summary
SLOTS = 4  # browsers are spread over 4 phases of each 20 ms, as real ones are not in step


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stamped_frame() -> bytes:
    return time.monotonic_ns().to_bytes(8, "little") + bytes(FRAME["ms"] * 48 - 8)


def since_ms(stamp: bytes) -> float:
    return (time.monotonic_ns() - int.from_bytes(stamp[:8], "little")) / 1e6


# -- the people ----------------------------------------------------------------------------------
def session_cookies(count: int) -> list[str]:
    """`count` employees, each signed in once (a Django session in the database)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.roles import Role
    from accounts.services import user_roles_set

    users = get_user_model()
    cookies = []
    for index in range(count):
        user, created = users.objects.get_or_create(username=f"bench-{index:04d}")
        if created:
            user_roles_set(user=user, roles=[Role.EMPLOYEE])
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = settings.AUTHENTICATION_BACKENDS[0]
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        cookies.append(f"sessionid={session.session_key}")
    return cookies


# -- one browser ---------------------------------------------------------------------------------
@dataclass
class Browser:
    """One simulated browser: through Koe (binary audio) or straight to the model (JSON)."""

    direct: bool
    ws: Any = None
    reader: asyncio.Task[None] | None = None
    down_ms: array[float] = field(default_factory=lambda: array("d"))
    errors: int = 0

    async def open(self, url: str, cookie: str, origin: str) -> None:
        from websockets.asyncio.client import connect

        if self.direct:
            self.ws = await connect(url, max_size=2**24, compression=None, open_timeout=60)
            first = json.loads(await self.ws.recv())
            assert first["type"] == "session.created", first
        else:
            self.ws = await connect(
                url,
                origin=origin,  # type: ignore[arg-type]
                additional_headers={"Cookie": cookie},
                compression=None,
                open_timeout=60,
            )
            while True:
                message = await asyncio.wait_for(self.ws.recv(), 60)
                if isinstance(message, bytes):
                    continue  # the model may start talking before "ready" is read
                event = json.loads(message)
                if event["type"] == "ready":
                    break
                if event["type"] == "error":
                    raise RuntimeError(f"Koe refused the session: {event}")
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        try:
            async for message in self.ws:
                if isinstance(message, bytes):
                    self.down_ms.append(since_ms(message))
                elif self.direct:
                    if '"response.output_audio.delta"' in message[:48]:
                        delta = json.loads(message)["delta"]
                        self.down_ms.append(since_ms(base64.b64decode(delta[:12])))
                elif '"error"' in message[:20]:
                    self.errors += 1
                    ERROR_CODES[json.loads(message).get("code", "?")] += 1
        except Exception:
            self.errors += 1

    async def send_frame(self) -> None:
        frame = stamped_frame()
        if self.direct:
            audio = base64.b64encode(frame).decode()
            await self.ws.send(
                json.dumps(
                    {"type": "input_audio_buffer.append", "audio": audio}, ensure_ascii=False
                )
            )
        else:
            await self.ws.send(frame)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()


async def speak(browsers: list[Browser], stop: asyncio.Event) -> None:
    """Every browser sends a frame every FRAME ms, spread over SLOTS phases."""
    loop = asyncio.get_running_loop()
    tick = FRAME["ms"] / 1000 / SLOTS
    start = loop.time()
    n = 0
    while not stop.is_set():
        slot = browsers[n % SLOTS :: SLOTS]
        for browser in slot:
            try:
                await browser.send_frame()
            except Exception:
                browser.errors += 1
        n += 1
        await asyncio.sleep(max(0.0, start + n * tick - loop.time()))


# -- the processes -------------------------------------------------------------------------------
def pinned(cpu: int | None) -> list[str]:
    if cpu is None or os.cpu_count() in (None, 1):
        return []
    return ["taskset", "-c", str(cpu)]


def start_upstream(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [*pinned(1), sys.executable, str(ROOT / "bench" / "gateway_upstream.py"), str(port)],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == b"ready"
    return process


def start_koe(
    port: int, upstream_port: int, media: str, *, cpu: int | None, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if k != "REDIS_URL"},
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "KOE_ENV": "production",
        "SECRET_KEY": os.environ["SECRET_KEY"],  # the one the sessions were signed with
        "ALLOWED_HOSTS": "127.0.0.1",
        # Sign-in as in production (Entra ID); the browsers' sessions are made directly.
        "ENTRA_TENANT_ID": "00000000-0000-0000-0000-000000000000",
        "ENTRA_CLIENT_ID": "koe-bench",
        "ENTRA_CLIENT_SECRET": "koe-bench",
        "KOE_DB_NAME": DATABASE,
        "KOE_REALTIME_PROVIDER": "local",
        "KOE_LOCAL_REALTIME_URL": f"ws://127.0.0.1:{upstream_port}/v1/realtime",
        "KOE_LOCAL_REALTIME_KEY": "bench",
        "KOE_ENGINE_ENABLED": "false",
        "KOE_MAX_SESSIONS_PER_USER": "2",
        "KOE_MAX_SESSIONS_PER_PROCESS": "0",  # no cap: the point is to find the capacity
        "KOE_UPSTREAM_CONNECTS_PER_MINUTE": "100000",
        "KOE_RECORD_AUDIO": "true",
        "KOE_MEDIA_DIR": media,
        "LOG_LEVEL": "WARNING",
        **env,
    }
    process = subprocess.Popen(
        [
            *pinned(0),
            str(ROOT / ".venv" / "bin" / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "portal.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,  # daphne's access log: one line per socket opened or closed
    )
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("Koe did not start")


async def upstream_control(port: int, command: str) -> Any:
    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{port}/control", max_size=2**28) as ws:
        await ws.send(command)
        reply = await ws.recv()
        return json.loads(reply) if command == "stats" else reply


# -- one step ------------------------------------------------------------------------------------
@dataclass
class Step:
    sessions: int
    up_ms: list[float]
    down_ms: list[float]
    errors: int
    cpu_s: float = 0.0
    seconds: float = 0.0
    rss_mb: float = 0.0
    idle_rss_mb: float = 0.0
    processes: int = 1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


async def run_step(
    *,
    count: int,
    direct: bool,
    url: str,
    origin: str,
    cookies: list[str],
    upstream_port: int,
    warmup_s: float,
    seconds: float,
    processes: list[Any],
    profile: str = "",
) -> Step:
    browsers = [Browser(direct=direct) for _ in range(count)]
    for start in range(0, count, 25):  # open in batches, like a morning rush
        await asyncio.gather(
            *(
                b.open(url, cookies[i], origin)
                for i, b in enumerate(browsers[start : start + 25], start=start)
            )
        )
    stop = asyncio.Event()
    speaker = asyncio.create_task(speak(browsers, stop))
    await asyncio.sleep(warmup_s)
    await upstream_control(upstream_port, "reset")
    for browser in browsers:
        del browser.down_ms[:]
    cpu_before = sum(sum(p.cpu_times()[:2]) for p in processes)
    started = time.monotonic()
    profiler = None
    if profile and not direct:
        # py-spy samples the Koe process from outside (collapsed stacks, --idle excluded).
        profiler = await asyncio.create_subprocess_exec(
            str(ROOT / ".venv" / "bin" / "py-spy"),
            "record",
            "--pid",
            str(processes[0].pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "200",
            "--format",
            "raw",
            "--output",
            profile,
            "--nonblocking",
            "--gil",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    await asyncio.sleep(seconds)
    if profiler is not None:
        await profiler.wait()
    elapsed = time.monotonic() - started
    cpu = sum(sum(p.cpu_times()[:2]) for p in processes) - cpu_before
    rss = sum(p.memory_info().rss for p in processes) / 2**20
    up = await upstream_control(upstream_port, "stats")
    down = [v for b in browsers for v in b.down_ms]
    stop.set()
    await speaker
    errors = sum(b.errors for b in browsers)
    await asyncio.gather(*(b.close() for b in browsers), return_exceptions=True)
    await asyncio.sleep(3 if not direct else 0.5)  # Koe ends the conversations
    return Step(count, up, down, errors, cpu_s=cpu, seconds=elapsed, rss_mb=rss)


def table(rows: list[tuple[Step, Step]], limit_ms: float, *, via: str) -> str:
    """Latency per direction (Koe, the direct baseline, what Koe adds), then cost per session,
    then the largest N each layout held."""
    lines = [
        f"Koe reached {via}; latencies in ms; 'direct' = the same browsers straight to the model",
        "",
        "| processes | sessions | direction | p50 Koe | p50 direct | p50 added | p99 Koe "
        "| p99 direct | p99 added | frames/s |",
        "|" + "---|" * 10,
    ]
    for koe, direct in rows:
        for name, k, d in (("up", koe.up_ms, direct.up_ms), ("down", koe.down_ms, direct.down_ms)):
            k50, d50 = percentile(k, 50), percentile(d, 50)
            k99, d99 = percentile(k, 99), percentile(d, 99)
            lines.append(
                f"| {koe.processes} | {koe.sessions} | {name} | {k50:.2f} | {d50:.2f} "
                f"| {k50 - d50:+.2f} | {k99:.2f} | {d99:.2f} | {k99 - d99:+.2f} "
                f"| {len(k) / koe.seconds:,.0f} |"
            )
    lines += [
        "",
        "| processes | sessions | Koe CPU (% of one core, all processes) | CPU per session "
        "(ms/s) | Koe RSS (MB) | RSS per session (MB) | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for koe, _ in rows:
        busy = 100 * koe.cpu_s / koe.seconds
        per_session_cpu = 1000 * koe.cpu_s / koe.seconds / koe.sessions
        per_session_rss = (koe.rss_mb - koe.idle_rss_mb) / koe.sessions
        lines.append(
            f"| {koe.processes} | {koe.sessions} | {busy:.0f} % | {per_session_cpu:.2f} "
            f"| {koe.rss_mb:.0f} | {per_session_rss:.2f} | {koe.errors} |"
        )
    lines.append("")
    for layout in sorted({koe.processes for koe, _ in rows}):
        mine = [koe for koe, _ in rows if koe.processes == layout]
        held = [
            koe.sessions
            for koe in mine
            if max(percentile(koe.up_ms, 99), percentile(koe.down_ms, 99)) <= limit_ms
            and koe.errors == 0
        ]
        lines.append(
            f"{layout} process(es): largest N with p99 through Koe <= {limit_ms:.0f} ms both ways: "
            f"{max(held) if held else 'none'} (of {', '.join(str(k.sessions) for k in mine)})."
        )
    return "\n".join(lines)


def start_redis(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return process


def start_nginx(prefix: Path, upstreams: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    from portal.nginx import nginx_standalone_config

    port = free_port()
    prefix.mkdir(parents=True, exist_ok=True)
    config = prefix / "nginx.conf"
    config.write_text(
        nginx_standalone_config(prefix=str(prefix), listen=f"127.0.0.1:{port}", upstreams=upstreams)
    )
    process = subprocess.Popen(["/usr/sbin/nginx", "-p", str(prefix), "-c", str(config)])
    time.sleep(0.5)
    return process, port


@contextlib.asynccontextmanager
async def koe_layout(
    layout: int, *, behind_nginx: bool, upstream_port: int, redis_port: int, media: str
) -> AsyncIterator[tuple[str, str, list[Any]]]:
    """`layout` Koe web processes (behind nginx, sharing Redis, when asked); yields the voice
    URL, the page origin, and the processes (psutil) for CPU and memory."""
    import psutil

    koes: list[subprocess.Popen[bytes]] = []
    nginx = None
    try:
        extra = {"REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"} if behind_nginx else {}
        ports = [free_port() for _ in range(layout)]
        for port in ports:
            cpu = None if behind_nginx else 0
            koes.append(start_koe(port, upstream_port, media, cpu=cpu, env=extra))
        front = ports[0]
        if behind_nginx:
            upstreams = [f"127.0.0.1:{p}" for p in ports]
            nginx, front = start_nginx(Path(media) / f"nginx-{layout}", upstreams)
        url, origin = f"ws://127.0.0.1:{front}/ws/voice/", f"http://127.0.0.1:{front}"
        yield url, origin, [psutil.Process(k.pid) for k in koes]
    finally:
        for process in [*koes, *([nginx] if nginx else [])]:
            process.terminate()
            process.wait(timeout=60)


@contextlib.asynccontextmanager
async def model_and_redis(behind_nginx: bool) -> AsyncIterator[tuple[int, int, str]]:
    """The fake model (and Redis when processes share it); yields their ports and a media
    folder."""
    if len(pinned(1)) and not behind_nginx:
        os.sched_setaffinity(0, {1})  # the browsers share CPU 1 with the fake model
    upstream_port, redis_port = free_port(), free_port()
    upstream = start_upstream(upstream_port)
    redis = start_redis(redis_port) if behind_nginx else None
    try:
        yield upstream_port, redis_port, tempfile.mkdtemp(prefix="koe-bench-media-")
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
        if redis is not None:
            redis.terminate()


async def bench(args: argparse.Namespace, cookies: list[str]) -> None:
    counts = [int(n) for n in args.sessions.split(",")]
    layouts = [int(k) for k in args.processes.split(",")]
    behind_nginx = max(layouts) > 1
    rows: list[tuple[Step, Step]] = []
    async with model_and_redis(behind_nginx) as (upstream_port, redis_port, media):
        for layout in layouts:
            async with koe_layout(
                layout,
                behind_nginx=behind_nginx,
                upstream_port=upstream_port,
                redis_port=redis_port,
                media=media,
            ) as (url, origin, processes):
                idle_rss = sum(p.memory_info().rss for p in processes) / 2**20
                for count in counts:
                    common: dict[str, Any] = {
                        "count": count,
                        "cookies": cookies,
                        "upstream_port": upstream_port,
                        "warmup_s": args.warmup,
                        "seconds": args.seconds,
                        "processes": processes,
                    }
                    profile = args.profile if count == counts[-1] else ""
                    koe = await run_step(
                        direct=False, url=url, origin=origin, profile=profile, **common
                    )
                    model_url = f"ws://127.0.0.1:{upstream_port}/v1/realtime"
                    direct = await run_step(direct=True, url=model_url, origin="", **common)
                    koe.processes = direct.processes = layout
                    koe.idle_rss_mb = idle_rss
                    rows.append((koe, direct))
                    print(
                        f"{layout} process(es), {count} sessions: up p99 "
                        f"{percentile(koe.up_ms, 99):.1f} ms, down p99 "
                        f"{percentile(koe.down_ms, 99):.1f} ms, errors {koe.errors} "
                        f"{dict(ERROR_CODES)}",
                        file=sys.stderr,
                        flush=True,
                    )
    print(table(rows, args.max_p99_ms, via="nginx" if behind_nginx else "direct"))


async def soak(args: argparse.Namespace, cookies: list[str]) -> None:
    """N browsers talk for many minutes; every interval: Koe's memory, latency, errors."""
    count = int(args.sessions.split(",")[0])
    layout = int(args.processes.split(",")[0])
    behind_nginx = layout > 1
    async with (
        model_and_redis(behind_nginx) as (upstream_port, redis_port, media),
        koe_layout(
            layout,
            behind_nginx=behind_nginx,
            upstream_port=upstream_port,
            redis_port=redis_port,
            media=media,
        ) as (url, origin, processes),
    ):
        browsers = [Browser(direct=False) for _ in range(count)]
        for start in range(0, count, 25):
            group = browsers[start : start + 25]
            await asyncio.gather(
                *(b.open(url, cookies[start + i], origin) for i, b in enumerate(group))
            )
        stop = asyncio.Event()
        speaker = asyncio.create_task(speak(browsers, stop))
        print(
            f"soak: {count} sessions, {layout} Koe process(es), {FRAME['ms']} ms frames, "
            f"{args.soak:g} minutes\n\n"
            "| minute | Koe RSS (MB) | Koe CPU (% of a core) | up p50 / p99 (ms) "
            "| down p50 / p99 (ms) | frames up | open sockets | errors |\n"
            "|---|---|---|---|---|---|---|---|",
            flush=True,
        )
        interval = 60.0
        started = time.monotonic()
        minute = 0
        while time.monotonic() - started < args.soak * 60:
            await upstream_control(upstream_port, "reset")
            for browser in browsers:
                del browser.down_ms[:]
            cpu_before = sum(sum(p.cpu_times()[:2]) for p in processes)
            await asyncio.sleep(interval)
            minute += 1
            cpu = sum(sum(p.cpu_times()[:2]) for p in processes) - cpu_before
            up = await upstream_control(upstream_port, "stats")
            down = [v for b in browsers for v in b.down_ms]
            rss = sum(p.memory_info().rss for p in processes) / 2**20
            alive = sum(1 for b in browsers if b.reader is not None and not b.reader.done())
            print(
                f"| {minute} | {rss:.0f} | {100 * cpu / interval:.0f} % "
                f"| {percentile(up, 50):.1f} / {percentile(up, 99):.1f} "
                f"| {percentile(down, 50):.1f} / {percentile(down, 99):.1f} | {len(up):,} "
                f"| {alive} | {sum(b.errors for b in browsers)} {dict(ERROR_CODES)} |",
                flush=True,
            )
        stop.set()
        await speaker
        await asyncio.gather(*(b.close() for b in browsers), return_exceptions=True)
        await asyncio.sleep(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", default="1,50,200,500")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--frame-ms", type=int, default=20, help="microphone frame length")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--max-p99-ms", type=float, default=50.0)
    parser.add_argument(
        "--processes",
        default="1",
        help="Koe web processes, e.g. 1,2: with more than one, every layout runs behind nginx "
        "with Redis (as deployed), and no process is pinned to a CPU",
    )
    parser.add_argument(
        "--soak",
        type=float,
        default=0.0,
        help="minutes: keep the first --sessions count talking this long, a line a minute",
    )
    parser.add_argument(
        "--profile", default="", help="py-spy's collapsed stacks of Koe at the largest N, to FILE"
    )
    args = parser.parse_args()
    FRAME["ms"] = args.frame_ms
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
    django_in_own_database(DATABASE)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    cookies = session_cookies(max(int(n) for n in args.sessions.split(",")))
    asyncio.run(soak(args, cookies) if args.soak else bench(args, cookies))


if __name__ == "__main__":
    main()
