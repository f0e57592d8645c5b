"""Minutes with no cloud at all: Koe's offline engine transcribes a spoken meeting (neural TTS
in, as a browser would send it), the segments are stored, exported as Markdown and Word and
read back, and the offline summary picks the decision and the action item."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from markdown_it import MarkdownIt

from accounts.roles import Role
from minutes.models import Minutes
from minutes.tests.test_consumer import open_minutes, ready
from voice.tests.engine.conftest import (  # noqa: F401
    engine,
    engine_models,
    say,
    say_ja,
    speaker,
    transcriber,
    transcriber_ja,
)
from voice.tests.test_consumers import collect_until, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

FIRST = "We agreed to move the launch to Friday."
SECOND = "Ken will send the budget by Monday."
SILENCE_MS = 1500
FRAME = 48 * 40  # 40 ms


def use_offline_engine(settings, url: str) -> None:
    """Koe's settings pointed at the engine under test (at `url`)."""
    settings.KOE_REALTIME_PROVIDER = "local"
    settings.KOE_LOCAL_REALTIME_URL = f"{url}/v1/realtime"
    settings.KOE_LOCAL_REALTIME_KEY = "engine-key"
    settings.KOE_UPSTREAM_CONNECTS_PER_MINUTE = 100


async def speak_in_real_time(comm, pcm: bytes) -> None:
    # A little faster than real time, within what the gateway accepts from a browser.
    for at in range(0, len(pcm), FRAME):
        await comm.send_to(bytes_data=pcm[at : at + FRAME] or b"\x00\x00" * 240)
        await asyncio.sleep(0.03)


async def test_a_meeting_transcribed_offline_is_exported_and_summarised(settings, engine, say):  # noqa: F811
    use_offline_engine(settings, engine)
    cookie = await session_cookie("mika", Role.EMPLOYEE)
    comm = await open_minutes(cookie)
    hello = await ready(comm)
    quiet = b"\x00\x00" * (24 * SILENCE_MS)
    audio = quiet[: 48 * 300] + say(FIRST) + quiet + say(SECOND) + quiet
    await speak_in_real_time(comm, audio)
    frames = await collect_until(
        comm,
        lambda f: f.get("type") == "segment.done" and "budget" in f.get("text", "").lower(),
        within=60,
    )
    await comm.send_to(text_data=json.dumps({"type": "stop"}))
    frames += await collect_until(comm, lambda f: f.get("type") == "websocket.close", within=60)
    done = [f for f in frames if f.get("type") == "segment.done"]
    assert len(done) == 2, done
    assert "friday" in done[0]["text"].lower() and "agreed" in done[0]["text"].lower()
    assert "budget" in done[1]["text"].lower()
    # Timed in the meeting: the second sentence starts after the first and its pause.
    assert 0 <= done[0]["start_ms"] < done[0]["end_ms"] < done[1]["start_ms"] < done[1]["end_ms"]
    assert done[1]["start_ms"] >= done[0]["end_ms"] + 700

    client = Client()
    await database_sync_to_async(client.cookies.load)({"sessionid": cookie[1].decode()[10:]})
    url = hello["url"]

    def exports() -> tuple[str, bytes, str]:
        client.post(f"{url}summary")
        page = client.get(url).content.decode()
        return (
            client.get(f"{url}export.md").content.decode(),
            client.get(f"{url}export.docx").content,
            page,
        )

    markdown, docx_bytes, page = await database_sync_to_async(exports)()
    tokens = MarkdownIt().parse(markdown)
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert "Summary (generated)" in headings and "Transcript" in headings
    assert "Decisions" in headings and "Action items" in headings
    transcript = markdown.split("## Transcript")[1]
    assert "**[0:0" in transcript and "friday" in transcript.lower()
    assert "budget" in transcript.lower()
    summary = markdown.split("## Transcript")[0].lower()
    decisions, actions = summary.split("### action items")
    assert "agreed" in decisions and "friday" in decisions
    assert "budget" in actions and "offline engine" in summary

    from docx import Document

    word = Document(io.BytesIO(docx_bytes))
    paragraphs = [p.text for p in word.paragraphs]
    assert any("friday" in p.lower() and p.startswith("[0:0") for p in paragraphs)
    assert any("budget" in p.lower() for p in paragraphs)
    assert "Summary (generated)" in paragraphs
    assert "Generated" in page and "offline engine" in page

    minutes = await database_sync_to_async(Minutes.objects.select_related("conversation").get)()
    assert minutes.conversation.provider == "local"
    assert await database_sync_to_async(minutes.summaries.count)() == 1


async def test_a_japanese_meeting_is_minuted_offline(settings, engine, say_ja):  # noqa: F811
    from django.contrib.auth import get_user_model

    from accounts.services import preference_set

    use_offline_engine(settings, engine)
    cookie = await session_cookie("sora", Role.EMPLOYEE)
    user = await database_sync_to_async(get_user_model().objects.get)(username="sora")
    await database_sync_to_async(preference_set)(user=user, transcription_language="ja")
    comm = await open_minutes(cookie)
    hello = await ready(comm)
    assert hello["language"] == "ja"
    quiet = b"\x00\x00" * (24 * SILENCE_MS)
    decided = "来月から新しい会議室を使うことに決定しました。"
    action = "田中さんが金曜日までに資料を準備します。"
    await speak_in_real_time(
        comm, quiet[: 48 * 300] + say_ja(decided) + quiet + say_ja(action) + quiet
    )
    frames = await collect_until(
        comm,
        lambda f: f.get("type") == "segment.done" and "金曜日" in f.get("text", ""),
        within=60,
    )
    await comm.send_to(text_data=json.dumps({"type": "stop"}))
    await collect_until(comm, lambda f: f.get("type") == "websocket.close", within=60)
    done = [f for f in frames if f.get("type") == "segment.done"]
    assert len(done) == 2, done
    # (The voice is Open JTalk's and the model Whisper base: 資料 may come back as 種類.)
    assert "決定" in done[0]["text"] and "金曜日までに" in done[1]["text"], done

    client = Client(HTTP_ACCEPT_LANGUAGE="ja")
    await database_sync_to_async(client.cookies.load)({"sessionid": cookie[1].decode()[10:]})

    def summarise() -> str:
        client.post(f"{hello['url']}summary")
        return client.get(f"{hello['url']}export.md").content.decode()

    markdown = await database_sync_to_async(summarise)()
    summary = markdown.split("## 文字起こし")[0]
    decisions, actions = summary.split("### アクションアイテム")
    assert "決定" in decisions and "準備します" in actions
    assert "要約（自動生成）" in markdown
