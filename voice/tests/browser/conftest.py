"""A live Koe (voice.tests.live_server: daphne, offline engine, the test database) and
Debian's Chromium driven by Playwright, with a WAV file as the microphone."""

from __future__ import annotations

import os
import shutil
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import free_port
from voice.tests.live_server import LiveKoe

CHROMIUM = os.environ.get("KOE_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "a-browser-test-password"


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
        # Two sentences of a meeting with a pause between them, for the minutes page.
        "meeting": write(
            "meeting.wav",
            silence(1500)
            + say("We agreed to move the launch to Friday.")
            + silence(1500)
            + say("Ken will send the budget by Monday.")
            + silence(30_000),
        ),
    }
