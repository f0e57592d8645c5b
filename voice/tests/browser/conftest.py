"""A live Koe (daphne, offline engine, the test database) and Debian's Chromium driven by
Playwright, with a WAV file as the microphone.

The server is a real `daphne portal.asgi:application` process on 127.0.0.1, using the test
database of this session (the embedded server's, or DATABASE_URL's), so what a test writes
with the ORM (users, documents) the server reads, and what the server stores the test reads.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from conftest import free_port

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = os.environ.get("KOE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("KOE_TEST_ARTIFACTS", settings.KOE_VAR_DIR / "test-artifacts"))
PASSWORD = "a-browser-test-password"


def _database_env() -> dict[str, str]:
    """Point the server at this session's test database."""
    db = connection.settings_dict
    if settings.DATABASE_URL:
        user = quote(db.get("USER") or "")
        password = quote(db.get("PASSWORD") or "")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or "5432"
        return {"DATABASE_URL": f"postgres://{auth}{host}:{port}/{db['NAME']}"}
    return {"KOE_DB_NAME": db["NAME"], "KOE_VAR_DIR": str(settings.KOE_VAR_DIR)}


class LiveKoe:
    def __init__(
        self,
        *,
        media_root: Path,
        upstream_url: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.engine_key = "koe-browser-test-" + secrets.token_hex(8)
        env = {
            **os.environ,
            **_database_env(),
            "DJANGO_SETTINGS_MODULE": "portal.settings_test",
            "KOE_ENV": "development",
            "KOE_REALTIME_PROVIDER": "local",
            "KOE_ENGINE_ENABLED": "true",
            "KOE_LOCAL_REALTIME_KEY": self.engine_key,
            "KOE_LOCAL_REALTIME_URL": upstream_url or f"ws://127.0.0.1:{self.port}/v1/realtime",
            "KOE_UPSTREAM_CONNECTS_PER_MINUTE": "200",
            "KOE_MEDIA_DIR": str(media_root),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        env.pop("REDIS_URL", None)
        self.log = ARTIFACTS / f"daphne-{self.port}.log"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "portal.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited: see {self.log}")
            try:
                health = self.url + "/healthz"  # always http://127.0.0.1
                with urllib.request.urlopen(health, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"daphne did not become healthy: see {self.log}")

    def warm_engine(self) -> None:
        """One typed turn through the engine, so that its models are loaded before a test's
        microphone timeline starts."""
        from websockets.sync.client import connect

        url = f"ws://127.0.0.1:{self.port}/v1/realtime?model=koe-local"
        headers = {"Authorization": f"Bearer {self.engine_key}"}
        with connect(url, additional_headers=headers, open_timeout=30) as ws:
            ws.send(
                json.dumps(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "message",
                            "role": "user",
                            "content": [{"type": "input_text", "text": "Hello"}],
                        },
                    }
                )
            )
            ws.send(json.dumps({"type": "response.create"}))
            while json.loads(ws.recv(timeout=120))["type"] != "response.done":
                pass

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


@pytest.fixture(autouse=True)
def close_db_connections_of_worker_threads() -> None:
    """Replaces the async fixture of voice/tests: these tests are synchronous (Playwright's
    sync API runs its own event loop) and use no asgiref threads."""


@pytest.fixture(scope="session")
def browser_media_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def shared_media_root(settings, browser_media_root):
    """Uploads of a test go where the live server reads them, never to var/media."""
    settings.MEDIA_ROOT = browser_media_root


@pytest.fixture(scope="session")
def live_koe(django_db_setup, browser_media_root) -> Iterator[LiveKoe]:
    """Koe with its offline engine, serving this session's test database."""
    server = LiveKoe(media_root=browser_media_root)
    try:
        server.warm_engine()
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_koe_without_model(django_db_setup, browser_media_root) -> Iterator[LiveKoe]:
    """Koe whose model provider cannot be reached (a port nothing listens on)."""
    server = LiveKoe(
        media_root=browser_media_root,
        upstream_url=f"ws://127.0.0.1:{free_port()}/v1/realtime",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_koe_with_short_sessions(django_db_setup, browser_media_root) -> Iterator[LiveKoe]:
    """Koe whose engine ends every model session after a few seconds, as Azure does after 30
    minutes: the gateway moves the conversation to a fresh session."""
    server = LiveKoe(
        media_root=browser_media_root, extra_env={"KOE_ENGINE_MAX_SESSION_SECONDS": "8"}
    )
    try:
        yield server
    finally:
        server.stop()


# Per module, not per session: while Playwright runs, its event loop is marked running in this
# thread, which the async tests of other modules could not live with.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Chromium is not installed: run ./koe test, which installs it")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop marked running in this thread, so Django would
    # refuse the tests' ORM calls as "async"; they are plain synchronous calls between browser
    # steps, which is what this switch is for.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as driver:
            yield driver
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_with_microphone(playwright_driver):
    """Open Chromium with a WAV file as its microphone: browser_with_microphone(path)."""
    opened = []

    def launch(wav: Path | None = None):
        args = [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
        ]
        if wav is not None:
            # %noloop: the recording plays once, then the microphone hears silence.
            args.append(f"--use-file-for-fake-audio-capture={wav}%noloop")
        browser = playwright_driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=args
        )
        opened.append(browser)
        return browser

    yield launch
    for browser in opened:
        browser.close()


@pytest.fixture(scope="session")
def recordings(tmp_path_factory) -> dict[str, Path]:
    """Spoken test WAVs made with the offline TTS (Whisper mishears espeak)."""
    from voice.engine.tts import speaker_default

    speaker = speaker_default()
    folder = tmp_path_factory.mktemp("recordings")

    def say(text: str) -> bytes:
        return b"".join(speaker.stream(text))

    def silence(ms: int) -> bytes:
        return b"\0\0" * (24 * ms)

    def write(name: str, pcm: bytes) -> Path:
        path = folder / name
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(24_000)
            out.writeframes(pcm)
        return path

    question = say("How many days of paid leave do I get?")
    return {
        # The capture starts when the page opens the microphone: a moment of silence first.
        "question": write("question.wav", silence(1500) + question + silence(30_000)),
        # Speaks again about four seconds into the answer.
        "barge_in": write(
            "barge_in.wav",
            silence(1500)
            + question
            + silence(5500)
            + say("And what about sick leave?")
            + silence(30_000),
        ),
    }
