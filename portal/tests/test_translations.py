"""Koe in Japanese: the catalog is complete and compiled, and the main pages (their scripts'
words included) show no English that was left untranslated or never marked for translation."""

from __future__ import annotations

import gettext
import json
import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client

from accounts.roles import Role
from accounts.services import user_roles_set
from minutes.services import minutes_start, minutes_summary_add
from voice.services import (
    EventRecord,
    conversation_end,
    conversation_events_append,
    conversation_start,
)

CATALOG = Path(__file__).resolve().parents[2] / "locale" / "ja" / "LC_MESSAGES"
# Words that stay as they are in Japanese: names, formats, and this test's own data.
KEPT = {
    "Koe", "Markdown", "Word", "DOCX", "CSV", "JSON", "Lines", "KOE_PRICES", "Microsoft",
    "Entra", "ID", "English", "aiko", "nobody", "local", "koe-local",
}  # fmt: skip
ENGLISH = re.compile(r"[A-Za-z][A-Za-z_'-]*[A-Za-z]")
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def po_entries() -> list[tuple[str, str, bool]]:
    """(msgid, msgstr, fuzzy) of every entry of the Japanese catalog but its header."""
    text = (CATALOG / "django.po").read_text(encoding="utf-8")
    entries = []
    for block in re.split(r"\n\s*\n", text):
        parts = dict.fromkeys(("msgid", "msgstr"), "")
        key = None
        for line in block.splitlines():
            start = re.match(r"(msgid|msgstr) (\".*\")$", line)
            if start:
                key = start.group(1)
                parts[key] = json.loads(start.group(2))
            elif line.startswith('"') and key:
                parts[key] += json.loads(line)
        if parts["msgid"]:
            entries.append((parts["msgid"], parts["msgstr"], "#, fuzzy" in block))
    return entries


def test_the_japanese_catalog_is_complete_and_compiled():
    entries = po_entries()
    assert len(entries) > 200
    assert [m for m, t, fuzzy in entries if not t or fuzzy] == []
    for msgid, msgstr, _ in entries:
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(msgstr)), msgid
    with (CATALOG / "django.mo").open("rb") as compiled:
        mo = gettext.GNUTranslations(compiled)
    # The .mo is compiled from this .po (msgfmt -o django.mo django.po).
    assert [m for m, t, _ in entries if mo.gettext(m) != t] == []


def english_left(html: str) -> set[str]:
    """English words a Japanese reader would see or hear on the page (screen readers too)."""
    page = BeautifulSoup(html, "lxml")
    words: list[str] = []
    for data in page.select('script[type="application/json"]'):
        # The scripts' words, but for the placeholders they fill in ({minutes}).
        words += [PLACEHOLDER.sub("", s) for s in _strings(json.loads(data.string or "null"))]
    for tag in page(["script", "style", "code", "time"]):
        tag.decompose()
    body = page.body
    assert body is not None
    for tag in body.select('[lang="en"]'):
        tag.decompose()  # the language switch names English in English
    words.append(body.get_text(" "))
    for tag in body.find_all(True):
        for name in ("aria-label", "placeholder", "title", "alt"):
            words.append(str(tag.get(name) or ""))
        if tag.name == "input" and tag.get("type") == "submit":
            words.append(str(tag.get("value") or ""))
    return {w for text in words for w in ENGLISH.findall(text)} - KEPT


def _strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


@pytest.fixture
def records() -> dict[str, str]:
    cache.clear()  # the auditor's filter choices are cached: only this test's data in them
    user = get_user_model().objects.create_user("aiko", password="x")
    user_roles_set(user=user, roles=[Role.EMPLOYEE, Role.AUDITOR, Role.KNOWLEDGE_ADMIN])
    get_user_model().objects.create_user("nobody")
    talk = conversation_start(user=user, provider="local", model="koe-local")
    conversation_events_append(
        conversation=talk,
        events=[
            EventRecord(
                1, "transcript", 1e9, {"item_id": "k_1", "role": "user", "text": "有給は？"}
            ),
            EventRecord(
                2,
                "transcript",
                1e9 + 1,
                {"item_id": "k_2", "role": "assistant", "text": "20日です。"},
            ),
        ],
    )
    conversation_end(conversation=talk, reason="client_closed")
    minutes = minutes_start(user=user, provider="local", model="koe-local", language="ja")
    conversation_events_append(
        conversation=minutes.conversation,
        events=[
            EventRecord(
                1,
                "segment",
                1e9,
                {"item_id": "s1", "start_ms": 0, "end_ms": 900, "text": "予算を決めました。"},
                subject="s1",
            ),
            EventRecord(
                2,
                "segment",
                1e9 + 1,
                {"item_id": "s2", "start_ms": 900, "end_ms": 1800, "text": "", "failed": True},
                subject="s2",
            ),
        ],
    )
    minutes_summary_add(
        user=user,
        minutes=minutes,
        source="extractive",
        model="koe-local",
        decisions=["予算を決めました。"],
        actions=[],
    )
    return {"talk": str(talk.public_id), "minutes": str(minutes.conversation.public_id)}


@pytest.mark.django_db
def test_the_main_pages_have_no_english_left_in_japanese(records):
    reader = Client(HTTP_ACCEPT_LANGUAGE="ja")
    reader.force_login(get_user_model().objects.get(username="aiko"))
    pages = [
        "/",
        "/conversations/",
        f"/conversations/{records['talk']}/",
        "/minutes/",
        f"/minutes/{records['minutes']}/",
        "/knowledge/search/",
        "/audit/",
        f"/audit/conversations/{records['talk']}/",
        f"/audit/conversations/{records['minutes']}/",
        "/audit/usage/",
        "/audit/access-log/",
    ]
    left = {}
    for url in pages:
        response = reader.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert '<html lang="ja">' in html
        left[url] = english_left(html)
    anonymous = Client(HTTP_ACCEPT_LANGUAGE="ja-JP,ja;q=0.9,en;q=0.5")
    left["/accounts/login/"] = english_left(anonymous.get("/accounts/login/").content.decode())
    no_role = Client(HTTP_ACCEPT_LANGUAGE="ja")
    no_role.force_login(get_user_model().objects.get(username="nobody"))
    left["/ (no role)"] = english_left(no_role.get("/").content.decode())
    assert {url: words for url, words in left.items() if words} == {}


@pytest.mark.django_db
def test_the_detector_sees_an_untranslated_word():
    # The check above can fail: the same pages in English are full of English.
    assert "Sign" in english_left(Client().get("/accounts/login/").content.decode())


@pytest.mark.django_db
def test_the_switch_overrides_the_browser_and_dates_are_japanese(records):
    reader = Client(HTTP_ACCEPT_LANGUAGE="ja")
    reader.force_login(get_user_model().objects.get(username="aiko"))
    page = reader.get(f"/minutes/{records['minutes']}/").content.decode()
    assert "年" in page and "文字起こし" in page  # DATETIME_FORMAT of Japanese, and its words
    reader.post("/i18n/setlang/", {"language": "en", "next": "/minutes/"})
    assert "Meeting minutes" in reader.get("/minutes/").content.decode()
