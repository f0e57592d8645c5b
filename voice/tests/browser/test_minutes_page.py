"""The minutes page in a real Chromium against a live Koe with the offline engine: a recorded
meeting as the microphone, the live transcript, stop, then naming speakers with the keys and
correcting words on the saved minutes, and the export reflecting both."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from minutes.models import Minutes, MinutesEdit
from minutes.selectors import minutes_lines
from voice.tests.browser.test_voice_page import (  # noqa: F401
    ANSWER_S,
    employee,
    eventually,
    signed_in_page,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_meeting_is_minuted_live_then_named_corrected_and_exported(
    live_koe,
    browser_with_microphone,
    recordings,
    employee,  # noqa: F811
):
    page = signed_in_page(browser_with_microphone(recordings["meeting"]), live_koe.url)
    page.click("text=Meeting minutes")
    expect(page.locator("h1")).to_have_text("Meeting minutes")
    page.click("#start")
    expect(page.locator("#status")).to_have_text("Recording", timeout=ANSWER_S * 1000)
    done = page.locator("#segments li.segment:not(.partial)")
    expect(done).to_have_count(2, timeout=ANSWER_S * 1000)
    expect(done.nth(0)).to_contain_text(re.compile("friday", re.I))
    expect(done.nth(1)).to_contain_text(re.compile("budget", re.I))
    assert page.locator("#elapsed").inner_text() != "0:00"

    page.click("#stop")
    page.wait_for_url(re.compile(r"/minutes/[0-9a-f-]{36}/$"), timeout=30_000)
    minutes = eventually(
        lambda: Minutes.objects.filter(conversation__ended_at__isnull=False).first()
    )
    assert minutes is not None

    page.fill("input[name=title]", "Launch planning")
    page.fill("input[name=speakers]", "Ken, Mika")
    page.click("form.details button[type=submit]")
    expect(page.locator("h1")).to_have_text("Launch planning")
    segments = page.locator("#lines li.segment")
    segments.nth(0).focus()
    page.keyboard.press("2")  # the second speaker offered: Mika
    expect(segments.nth(0).locator("select.speaker")).to_have_value("Mika")
    expect(segments.nth(1)).to_be_focused()  # on to the next part
    page.keyboard.press("1")
    expect(segments.nth(1).locator("select.speaker")).to_have_value("Ken")
    words = segments.nth(1).locator(".text")
    words.fill("Ken will send the budget by Monday morning.")
    words.press("Enter")
    expect(segments.nth(1)).to_have_class(re.compile("edited"))
    assert eventually(lambda: MinutesEdit.objects.filter(text__isnull=False).exists())

    page.reload()
    expect(segments.nth(0).locator("select.speaker")).to_have_value("Mika")
    expect(segments.nth(1).locator(".text")).to_have_text(
        "Ken will send the budget by Monday morning."
    )
    lines = minutes_lines(user=employee, minutes=minutes)
    assert [line.speaker for line in lines] == ["Mika", "Ken"]
    assert "morning" not in lines[1].heard_text  # the words as heard stay
    markdown = page.request.get(page.url + "export.md").text()
    assert "# Launch planning" in markdown
    assert "] Ken:** Ken will send the budget by Monday morning." in markdown
