"""The voice page in a real Chromium against a live Koe with the offline engine: a recorded
voice as the microphone, real AudioWorklets, real WebSockets, the demo knowledge base."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.services import user_roles_set
from knowledge.models import Document
from voice.models import Conversation, ConversationEvent
from voice.tests.browser.conftest import PASSWORD
from voice.tests.live_server import ARTIFACTS, ROOT

pytestmark = pytest.mark.django_db(transaction=True)

ANSWER_S = 90  # generous: CI machines are slower than ours, and nothing here is timed


@pytest.fixture
def demo_knowledge() -> None:
    call_command("knowledge_ingest", str(ROOT / "knowledge" / "demo"), stdout=io.StringIO())


@pytest.fixture
def employee() -> Any:
    user = get_user_model().objects.create_user("emi", password=PASSWORD)
    user_roles_set(user=user, roles=[Role.EMPLOYEE])
    return user


def signed_in_page(browser: Any, base_url: str, locale: str = "en-US") -> Page:
    # The browser's language (Accept-Language) is what Koe's pages follow.
    page = browser.new_context(locale=locale).new_page()
    page.goto(base_url + "/accounts/login/")
    page.fill("input[name=login]", "emi")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.local-login button[type=submit]")
    page.wait_for_url(base_url + "/")
    return page


def eventually(check: Callable[[], Any], within_s: float = 20) -> Any:
    """Poll the database until check() returns something truthy."""
    deadline = time.monotonic() + within_s
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


def stored_turns(user: Any) -> list[dict[str, Any]]:
    return [
        e.data
        for e in ConversationEvent.objects.filter(actor=user, event_type="transcript").order_by(
            "conversation_id", "sequence"
        )
    ]


def diagnostics(page: Page, name: str) -> int:
    return int(page.text_content(f"#{name}") or "0")


def user_turn(page: Page):
    return page.locator("#transcript .turn.user").first


def answer_turn(page: Page):
    return page.locator("#transcript .turn.assistant").first


def test_a_spoken_question_is_answered_aloud_with_citations_and_stored(
    live_koe, browser_with_microphone, recordings, demo_knowledge, employee
):
    page = signed_in_page(browser_with_microphone(recordings["question"]), live_koe.url)
    page.click("#talk")
    expect(page.locator("#talk")).to_have_attribute("aria-pressed", "true")

    expect(user_turn(page)).to_contain_text("paid leave", timeout=ANSWER_S * 1000)
    expect(answer_turn(page)).to_contain_text("twenty days", timeout=ANSWER_S * 1000)
    chip = answer_turn(page).locator(".citations a").first
    expect(chip).to_contain_text("Leave and Holidays")
    assert re.fullmatch(
        r"/knowledge/documents/[0-9a-f-]{36}/passages/\d+/", chip.get_attribute("href") or ""
    )

    # Mid-conversation: the answer is being spoken. The screenshot is kept for people to see.
    expect(page.locator("#voice")).to_have_attribute("data-status", "speaking", timeout=30_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "voice-mid-conversation.png"), full_page=True)

    # The whole answer plays (the page goes back to listening once the buffer is drained)...
    expect(page.locator("#voice")).to_have_attribute("data-status", "listening", timeout=60_000)
    played_ms = diagnostics(page, "played")
    assert played_ms > 3000
    # ...without running dry once after its prebuffer.
    assert diagnostics(page, "underruns") == 0
    assert diagnostics(page, "frames") > 50  # 40 ms frames went out the whole time

    # The chip opens the passage it names.
    passage = page.context.new_page()
    passage.goto(live_koe.url + (chip.get_attribute("href") or ""))
    expect(passage.locator("blockquote.passage")).to_contain_text("twenty days")

    page.click("#end")
    conversation = eventually(
        lambda: Conversation.objects.filter(user=employee, ended_at__isnull=False).first()
    )
    assert conversation is not None and conversation.provider == "local"
    turns = eventually(lambda: len(stored_turns(employee)) >= 2 and stored_turns(employee))
    assert [t["role"] for t in turns] == ["user", "assistant"]
    assert "paid leave" in turns[0]["text"].lower()
    assert "twenty days" in turns[1]["text"]
    leave = Document.objects.get(original_name="leave-and-holidays.md")
    cited = ConversationEvent.objects.get(conversation=conversation, event_type="citations")
    assert cited.data["item_id"] == turns[1]["item_id"]
    assert cited.data["document_ids"][0] == str(leave.public_id)  # the best passage first


def test_speaking_during_the_answer_stops_it_and_stores_what_was_heard(
    live_koe, browser_with_microphone, recordings, demo_knowledge, employee
):
    page = signed_in_page(browser_with_microphone(recordings["barge_in"]), live_koe.url)
    page.click("#talk")
    expect(answer_turn(page)).to_contain_text("twenty days", timeout=ANSWER_S * 1000)
    # The second sentence of the recording interrupts the answer.
    expect(answer_turn(page)).to_have_class(re.compile(r"\binterrupted\b"), timeout=60_000)
    played_ms = diagnostics(page, "played")
    assert played_ms > 0

    truncated = eventually(
        lambda: ConversationEvent.objects.filter(actor=employee, event_type="truncated").first()
    )
    assert truncated is not None, "the browser's truncate never reached the server"
    data = truncated.data
    # Stored as played: the milliseconds the playback worklet reported, less than was sent.
    assert data["audio_end_ms"] == played_ms
    assert data["audio_end_ms"] < data["received_ms"]
    answer = next(t for t in stored_turns(employee) if t["role"] == "assistant")
    assert data["item_id"] == answer["item_id"]
    assert data["heard_text"] and len(data["heard_text"]) < len(answer["text"])
    assert answer["text"].startswith(data["heard_text"].rstrip(" .…"))

    # The interruption was a question of its own, and it is answered.
    expect(page.locator("#transcript .turn.user").nth(1)).to_contain_text(
        "sick leave", timeout=ANSWER_S * 1000
    )
    expect(page.locator("#transcript .turn.assistant").nth(1)).to_contain_text(
        "Sick", timeout=ANSWER_S * 1000
    )


def test_push_to_talk_with_the_space_bar(
    live_koe, browser_with_microphone, recordings, demo_knowledge, employee
):
    page = signed_in_page(browser_with_microphone(recordings["question"]), live_koe.url)
    page.check("input[name=mode][value=push_to_talk]")
    expect(page.locator("#talk")).to_have_text("Hold to talk")
    # The space bar talks from anywhere but a text field (here the focus is on the mode switch).
    page.keyboard.down("Space")
    expect(page.locator("#talk")).to_have_attribute("aria-pressed", "true")
    # The recording starts with the microphone: 1.5 s of silence, then the question (2.7 s).
    page.wait_for_timeout(6500)
    # Held down: no turn detection answers, however long the silence after the question.
    expect(page.locator("#transcript .turn")).to_have_count(0)
    expect(page.locator("#voice")).to_have_attribute("data-status", "hearing")
    page.keyboard.up("Space")
    expect(user_turn(page)).to_contain_text("paid leave", timeout=ANSWER_S * 1000)
    expect(answer_turn(page)).to_contain_text("twenty days", timeout=ANSWER_S * 1000)
    turns = eventually(lambda: len(stored_turns(employee)) >= 2 and stored_turns(employee))
    assert [t["role"] for t in turns] == ["user", "assistant"]


def test_a_typed_question_is_answered_without_a_microphone(
    live_koe, browser_with_microphone, demo_knowledge, employee
):
    page = signed_in_page(browser_with_microphone(None), live_koe.url)
    page.fill("#question", "How many days of paid leave do I get?")
    page.keyboard.press("Enter")
    # The question shows at once; the answer follows, with its source.
    expect(user_turn(page)).to_have_text(re.compile("How many days of paid leave do I get?"))
    expect(answer_turn(page)).to_contain_text("twenty days", timeout=ANSWER_S * 1000)
    # One entry for the question, now under the server's id (no empty duplicate).
    expect(page.locator("#transcript .turn.user")).to_have_count(1)
    assert (user_turn(page).get_attribute("data-item-id") or "").startswith("k_")
    expect(answer_turn(page).locator(".citations a").first).to_contain_text("Leave and Holidays")
    assert page.input_value("#question") == ""
    turns = eventually(lambda: len(stored_turns(employee)) >= 2 and stored_turns(employee))
    assert turns[0] == {**turns[0], "role": "user", "typed": True}
    assert turns[0]["text"] == "How many days of paid leave do I get?"


def test_an_unreachable_model_shows_an_error_banner(
    live_koe_without_model, browser_with_microphone, employee
):
    page = signed_in_page(browser_with_microphone(None), live_koe_without_model.url)
    page.fill("#question", "Is anyone there?")
    page.keyboard.press("Enter")
    alert = page.locator("#alert")
    expect(alert).to_contain_text("not reachable", timeout=60_000)
    expect(alert).to_be_visible()
    expect(alert).to_have_attribute("role", "alert")
    expect(page.locator("#end")).to_be_hidden()
    conversation = eventually(
        lambda: Conversation.objects.filter(user=employee, ended_at__isnull=False).first()
    )
    assert conversation is not None and conversation.end_reason == "upstream_unavailable"


def test_a_renewed_model_session_shows_reconnected_and_the_talk_goes_on(
    live_koe_with_short_sessions, browser_with_microphone, demo_knowledge, employee
):
    server = live_koe_with_short_sessions
    server.warm_engine()
    page = signed_in_page(browser_with_microphone(None), server.url)
    page.fill("#question", "How many days of paid leave do I get?")
    page.keyboard.press("Enter")
    expect(answer_turn(page)).to_contain_text("twenty days", timeout=ANSWER_S * 1000)
    # The engine ends the model session after 8 s; Koe opens a new one with the conversation.
    notice = page.locator("#notice")
    expect(notice).to_contain_text("The conversation goes on", timeout=60_000)
    expect(notice).to_have_attribute("role", "status")  # news, not an alarm
    expect(page.locator("#alert")).to_be_empty()
    page.fill("#question", "What about sick leave?")
    page.keyboard.press("Enter")
    expect(page.locator("#transcript .turn.assistant").nth(1)).to_contain_text(
        "Sick", timeout=ANSWER_S * 1000
    )
    assert Conversation.objects.filter(user=employee).count() == 1  # one conversation throughout
    assert eventually(
        lambda: ConversationEvent.objects.filter(actor=employee, event_type="rollover").exists()
    )


def test_the_page_follows_a_japanese_browser_and_switches_to_english(
    live_koe, browser_with_microphone, demo_knowledge, employee
):
    page = browser_with_microphone(None).new_context(locale="ja-JP").new_page()
    page.goto(live_koe.url + "/accounts/login/")
    expect(page.locator("form.local-login button[type=submit]")).to_have_text("サインイン")
    page.fill("input[name=login]", "emi")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.local-login button[type=submit]")
    page.wait_for_url(live_koe.url + "/")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.locator("#voice-title")).to_have_text("Koe に質問")
    # The script's own words come from the Japanese catalog too.
    expect(page.locator("#talk")).to_have_text("話し始める")
    page.fill("#question", "How many days of paid leave do I get?")
    page.keyboard.press("Enter")
    expect(answer_turn(page)).to_contain_text("twenty days", timeout=ANSWER_S * 1000)
    expect(page.locator("#status")).to_have_text(re.compile("話しています|準備完了|聞いています"))

    page.click(".language-switch button[lang=en]")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#talk")).to_have_text("Start talking")
