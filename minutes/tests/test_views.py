"""The minutes pages: who reads and edits what, the access trail, edits beside the words as
heard, summaries from the model in text mode, exports, the language setting and retention."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connections, transaction
from django.test import Client

from accounts.roles import Role
from accounts.selectors import transcription_language_of
from accounts.services import user_roles_set
from audit.models import AccessLogEntry
from minutes.models import Minutes, MinutesEdit, MinutesSummary
from minutes.selectors import minutes_lines
from minutes.services import minutes_start
from voice.models import Conversation
from voice.services import EventRecord, conversation_events_append, conversations_purge
from voice.tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.django_db(transaction=True)

HEARD = [
    ("s1", 0, 2500, "Good morning, let us start with the budget.", "A"),
    ("s2", 3000, 6200, "We decided to hire two engineers.", "B"),
    ("s3", 7000, 9000, "Sato will draft the job posting by Friday.", ""),
]


def person(username: str, *roles: Role) -> tuple[Any, Client]:
    user = get_user_model().objects.create_user(username)
    user_roles_set(user=user, roles=roles)
    client = Client()
    client.force_login(user)
    return user, client


def meeting(user) -> Minutes:
    minutes = minutes_start(user=user, provider="local", model="koe-local", language="en")
    conversation_events_append(
        conversation=minutes.conversation,
        events=[
            EventRecord(
                n,
                "segment",
                1_700_000_000.0 + n,
                {"item_id": sid, "start_ms": a, "end_ms": b, "text": text, "speaker": who},
                subject=sid,
            )
            for n, (sid, a, b, text, who) in enumerate(HEARD, start=1)
        ],
    )
    return minutes


def url(minutes: Minutes, tail: str = "") -> str:
    return f"/minutes/{minutes.conversation.public_id}/{tail}"


def edit(client: Client, minutes: Minutes, segment: str, **change: object):
    return client.post(
        url(minutes, f"segments/{segment}"),
        data=json.dumps(change),
        content_type="application/json",
    )


def test_the_owner_reads_the_minutes_and_nobody_else_finds_them():
    owner, mine = person("aiko", Role.EMPLOYEE)
    _, theirs = person("ken", Role.EMPLOYEE)
    minutes = meeting(owner)
    page = mine.get(url(minutes))
    assert page.status_code == 200
    html = page.content.decode()
    assert "We decided to hire two engineers." in html and "0:03" in html
    assert theirs.get(url(minutes)).status_code == 404
    assert theirs.get(url(minutes, "export.md")).status_code == 404
    assert edit(theirs, minutes, "s1", text="mine now").status_code == 404
    assert Client().get(url(minutes)).status_code in (302, 403)
    assert mine.get("/minutes/").status_code == 200
    assert AccessLogEntry.objects.count() == 0  # an owner's own reads leave no trail


def test_auditors_read_and_export_with_a_trail_but_do_not_edit():
    owner, _ = person("aiko", Role.EMPLOYEE)
    _, audit = person("audrey", Role.AUDITOR)
    minutes = meeting(owner)
    assert audit.get(url(minutes)).status_code == 200
    assert audit.get(url(minutes, "export.docx")).status_code == 200
    trail = list(AccessLogEntry.objects.order_by("at", "pk").values_list("event_type", "subject"))
    subject = str(minutes.conversation.public_id)
    assert trail == [("minutes.view", subject), ("minutes.export.docx", subject)]
    assert edit(audit, minutes, "s1", speaker="Someone").status_code == 403
    assert audit.post(url(minutes, "summary")).status_code == 403
    assert MinutesEdit.objects.count() == 0 and MinutesSummary.objects.count() == 0


def test_edits_keep_the_words_as_heard_and_show_in_the_exports():
    owner, client = person("aiko", Role.EMPLOYEE)
    minutes = meeting(owner)
    client.post(url(minutes, "details"), {"title": "Hiring sync", "speakers": "Tanaka, Sato"})
    answer = edit(client, minutes, "s1", speaker="Tanaka")
    assert answer.json() == {
        "segment_id": "s1",
        "text": HEARD[0][3],
        "speaker": "Tanaka",
        "edited": True,
    }
    answer = edit(client, minutes, "s2", text="We decided to hire three engineers.")
    assert answer.status_code == 200 and answer.json()["speaker"] == "B"

    lines = minutes_lines(user=owner, minutes=minutes)
    assert [(x.speaker, x.edited) for x in lines] == [("Tanaka", True), ("B", True), ("", False)]
    assert lines[1].heard_text == "We decided to hire two engineers."
    page = client.get(url(minutes)).content.decode()
    assert "Hiring sync" in page and "Edited; as heard" in page

    markdown = client.get(url(minutes, "export.md")).content.decode()
    assert markdown.startswith("# Hiring sync\n")
    assert "**[0:00] Tanaka:** Good morning" in markdown
    assert "**[0:03] B:** We decided to hire three engineers." in markdown
    assert "**[0:07] Unknown speaker:** Sato will draft" in markdown
    from docx import Document

    word = Document(io.BytesIO(client.get(url(minutes, "export.docx")).content))
    texts = [p.text for p in word.paragraphs]
    assert "[0:03] B: We decided to hire three engineers." in texts
    assert word.core_properties.title == "Hiring sync"

    # The edits are records: the database refuses to change or remove them.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        MinutesEdit.objects.update(text="rewritten")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        MinutesEdit.objects.all().delete()


@pytest.mark.parametrize(
    ("segment", "body", "status"),
    [
        ("s9", {"text": "no such part"}, 400),
        ("s1", {"text": "   "}, 400),
        ("s1", {}, 400),
        ("s1", {"speaker": 7}, 400),
        ("s1", {"speaker": "x" * 81}, 400),
        ("s1", "not an object", 400),
    ],
)
def test_bad_edits_are_refused_with_a_reason(segment, body, status):
    owner, client = person("aiko", Role.EMPLOYEE)
    minutes = meeting(owner)
    answer = client.post(
        url(minutes, f"segments/{segment}"),
        data=json.dumps(body),
        content_type="application/json",
    )
    assert answer.status_code == status and answer.json()["error"]
    broken = client.post(
        url(minutes, "segments/s1"), data=b"{not json", content_type="application/json"
    )
    assert broken.status_code == 400
    assert MinutesEdit.objects.count() == 0


def test_ten_speakers_are_too_many_for_the_keys():
    owner, client = person("aiko", Role.EMPLOYEE)
    minutes = meeting(owner)
    names = ", ".join(f"P{n}" for n in range(10))
    page = client.post(url(minutes, "details"), {"title": "x", "speakers": names}, follow=True)
    assert "at most 9 speakers" in page.content.decode()
    minutes.refresh_from_db()
    assert minutes.speakers == []


def test_the_offline_summary_picks_decisions_and_actions_and_says_so(settings):
    settings.KOE_REALTIME_PROVIDER = "local"
    owner, client = person("aiko", Role.EMPLOYEE)
    minutes = meeting(owner)
    client.post(url(minutes, "summary"))
    summary = MinutesSummary.objects.get()
    assert summary.source == "extractive"
    assert summary.decisions == ["B: We decided to hire two engineers."]
    assert summary.actions == ["Sato will draft the job posting by Friday."]
    page = client.get(url(minutes)).content.decode()
    assert "Sentences picked from the transcript" in page


@pytest.fixture
async def text_model(settings):
    server = await FakeUpstream().start()
    settings.KOE_REALTIME_PROVIDER = "openai"
    settings.OPENAI_BASE_URL = server.url.split("/v1/")[0].replace("ws://", "http://")
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_REALTIME_MODEL = "gpt-realtime"
    yield server
    await server.stop()


@pytest.mark.parametrize("answer", ["good", "not json"])
async def test_the_model_summarises_in_text_mode(text_model, answer):
    from asgiref.sync import sync_to_async

    text_model.answer = lambda conn: (
        json.dumps(
            {"decisions": ["Hire two engineers."], "actions": ["Sato: job posting by Friday."]}
        )
        if answer == "good"
        else "I cannot help with that."
    )

    def run() -> tuple[str, int]:
        owner, client = person("aiko", Role.EMPLOYEE)
        minutes = meeting(owner)
        page = client.post(url(minutes, "summary"), follow=True).content.decode()
        count = MinutesSummary.objects.count()
        connections.close_all()  # this thread's, before the test database is dropped
        return page, count

    page, count = await sync_to_async(run)()
    sent = text_model.connections[0]
    update = sent.of_type("session.update")[0]["session"]
    assert update["output_modalities"] == ["text"] and update["tools"] == []
    message = sent.of_type("conversation.item.create")[0]["item"]["content"][0]["text"]
    assert "B: We decided to hire two engineers." in message
    if answer == "good":
        assert count == 1
        assert "Hire two engineers." in page and "Generated by the model gpt-realtime" in page
    else:
        assert count == 0
        assert "The summary could not be made" in page


def test_the_transcription_language_is_a_setting_of_each_person(settings):
    settings.KOE_TRANSCRIPTION_LANGUAGE = ""
    user, client = person("aiko", Role.EMPLOYEE)
    assert transcription_language_of(user=user) == ""
    client.post("/preferences/language", {"transcription_language": "ja", "next": "/minutes/"})
    assert transcription_language_of(user=user) == "ja"
    page = client.post(
        "/preferences/language", {"transcription_language": "fr", "next": "https://evil.example/"}
    )
    assert page["Location"] == "/"
    assert transcription_language_of(user=user) == "ja"


def test_retention_takes_the_minutes_with_their_conversation(backdate):
    owner, client = person("aiko", Role.EMPLOYEE)
    old = meeting(owner)
    edit(client, old, "s1", speaker="Tanaka")
    client.post(url(old, "summary"))
    backdate(old.conversation, days=100)
    kept = meeting(owner)
    purge = conversations_purge(retention_days=90)
    assert purge is not None and purge.conversations == 1
    assert list(Minutes.objects.all()) == [kept]
    assert MinutesEdit.objects.count() == 0 and MinutesSummary.objects.count() == 0
    assert Conversation.objects.filter(kind="minutes").count() == 1


def test_auditors_find_meetings_by_their_words_and_open_the_minutes():
    owner, _ = person("aiko", Role.EMPLOYEE)
    _, audit = person("audrey", Role.AUDITOR)
    minutes = meeting(owner)
    listing = audit.get("/audit/", {"text": "hire two"}).content.decode()
    assert str(minutes.conversation.public_id) in listing
    assert (
        str(minutes.conversation.public_id)
        not in audit.get("/audit/", {"text": "no such words"}).content.decode()
    )
    detail = audit.get(f"/audit/conversations/{minutes.conversation.public_id}/").content.decode()
    assert "We decided to hire two engineers." in detail
    assert f"/minutes/{minutes.conversation.public_id}/" in detail


def test_a_meetings_kind_cannot_change_with_its_end():
    owner, _ = person("aiko", Role.EMPLOYEE)
    minutes = meeting(owner)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        Conversation.objects.filter(pk=minutes.conversation_id).update(
            ended_at=minutes.conversation.started_at, kind="assistant"
        )
