"""Who may read which conversations, what the auditor's pages show, and the access trail."""

from __future__ import annotations

import io

import pytest
from django.db import DatabaseError, transaction
from django.test import Client
from django.utils import timezone

from accounts.roles import Role
from audit.models import AccessLogEntry
from audit.tests.conftest import leave_talk

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(person):
    return {
        "emi": person("emi", Role.EMPLOYEE),
        "taro": person("taro", Role.EMPLOYEE),
        "aiko": person("aiko", Role.AUDITOR),
        "kenji": person("kenji", Role.KNOWLEDGE_ADMIN),
    }


def test_employees_see_only_their_own_conversations(people, talk, client_of):
    mine = talk(people["emi"], leave_talk("How many days of paid leave do I get?"))
    theirs = talk(people["taro"], leave_talk("What is the travel allowance?"))
    emi = client_of(people["emi"])
    listing = emi.get("/conversations/").content.decode()
    assert str(mine.public_id) in listing and str(theirs.public_id) not in listing
    page = emi.get(f"/conversations/{mine.public_id}/")
    assert page.status_code == 200 and "twenty days" in page.content.decode()
    # Someone else's conversation does not exist for an employee; the audit pages are closed.
    assert emi.get(f"/conversations/{theirs.public_id}/").status_code == 404
    assert emi.get("/audit/").status_code == 403
    assert emi.get(f"/audit/conversations/{theirs.public_id}/").status_code == 403
    assert emi.get("/audit/export.csv").status_code == 403
    assert not AccessLogEntry.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in(people, talk):
    conversation = talk(people["emi"], leave_talk())
    for url in (
        "/conversations/",
        f"/conversations/{conversation.public_id}/",
        "/audit/",
        "/audit/export.jsonl",
        "/audit/access-log/",
    ):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_other_roles_may_not_audit(people, client_of):
    assert client_of(people["kenji"]).get("/audit/").status_code == 403
    assert client_of(people["kenji"]).get("/conversations/").status_code == 403


def test_the_auditor_reads_every_conversation_and_each_read_is_logged(people, talk, client_of):
    conversation = talk(people["emi"], leave_talk())
    aiko = client_of(people["aiko"])
    listing = aiko.get("/audit/?user=emi")
    assert listing.status_code == 200 and str(conversation.public_id) in listing.content.decode()
    detail = aiko.get(f"/audit/conversations/{conversation.public_id}/").content.decode()
    # The timeline: the turn, the tool and its arguments, the passage as it was (version 2),
    # the latency, tokens and cost of the answer, and where the user cut it off.
    assert "How many days of paid leave do I get?" in detail
    assert "search_knowledge" in detail and "paid leave" in detail
    assert "Leave and Holidays" in detail and "version 2" in detail
    assert "answered after 640 ms" in detail
    assert "400 in / 100 out tokens" in detail
    assert "Interrupted after 1200 ms" in detail and "You get twenty" in detail
    # gpt-realtime: 350 text in x 4 + 50 audio in x 32 + 20 text out x 16 + 80 audio out x 64
    assert "$0.008440" in detail
    entries = list(AccessLogEntry.objects.order_by("pk"))
    assert [(e.actor_id, e.event_type) for e in entries] == [
        (people["aiko"].pk, "conversations.list"),
        (people["aiko"].pk, "conversation.view"),
    ]
    assert entries[0].data == {"filter": {"username": "emi"}, "page": "1"}
    assert entries[1].subject == str(conversation.public_id)
    # The trail shows itself, and reading it is logged too.
    trail = aiko.get("/audit/access-log/").content.decode()
    assert "conversation.view" in trail and "username=emi" in trail
    last = AccessLogEntry.objects.order_by("pk").last()
    assert last is not None and last.event_type == "access_log.view"


def test_audit_pages_are_read_only(people, talk, client_of):
    conversation = talk(people["emi"], leave_talk())
    aiko = client_of(people["aiko"])
    for url in (
        "/audit/",
        f"/audit/conversations/{conversation.public_id}/",
        "/audit/access-log/",
        f"/conversations/{conversation.public_id}/",
    ):
        assert aiko.post(url).status_code == 405
        assert aiko.delete(url).status_code == 405


def test_nobody_can_edit_or_delete_the_access_log(people, client_of):
    client_of(people["aiko"]).get("/audit/")
    entry = AccessLogEntry.objects.get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AccessLogEntry.objects.filter(pk=entry.pk).update(event_type="nothing")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        entry.delete()


def test_transcripts_with_html_render_escaped(people, talk, client_of):
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    conversation = talk(
        people["emi"], [("transcript", {"item_id": "k_1", "role": "user", "text": attack})]
    )
    for client, url in (
        (client_of(people["emi"]), f"/conversations/{conversation.public_id}/"),
        (client_of(people["aiko"]), f"/audit/conversations/{conversation.public_id}/"),
    ):
        page = client.get(url).content.decode()
        assert attack not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("user=taro", {"travel"}),
        ("text=PAID+LEAVE", {"leave"}),  # any case
        ("text=有給", {"ja"}),  # Japanese, no spaces to split on
        ("tool=search_knowledge", {"leave", "travel"}),
        ("document=6f1c3a52-0000-4000-8000-000000000001", {"travel"}),
        ("provider=local", {"ja"}),
        ("model=gpt-realtime-mini", {"travel"}),
        ("ended=error", {"broken"}),
        ("ended=expiry", {"ja"}),
    ],
)
def test_filters(people, talk, client_of, query, expected):
    travel_doc = "6f1c3a52-0000-4000-8000-000000000001"
    made = {
        "leave": talk(people["emi"], leave_talk()),
        "travel": talk(
            people["taro"],
            [
                (
                    "transcript",
                    {"item_id": "k_1", "role": "user", "text": "What is the travel allowance?"},
                ),
                (
                    "tool_call",
                    {"name": "search_knowledge", "arguments": "{}", "document_ids": [travel_doc]},
                ),
                ("citations", {"item_id": "k_2", "document_ids": [travel_doc], "passages": []}),
            ],
            model="gpt-realtime-mini",
        ),
        "ja": talk(
            people["emi"],
            [
                (
                    "transcript",
                    {"item_id": "k_1", "role": "user", "text": "有給休暇は何日ありますか"},
                ),
                ("rollover", {"reason": "session_expired", "session": 2}),
            ],
            provider="local",
            model="koe-local",
        ),
        "broken": talk(people["emi"], [], end_reason="upstream_unavailable"),
    }
    page = client_of(people["aiko"]).get(f"/audit/?{query}").content.decode()
    found = {name for name, c in made.items() if str(c.public_id) in page}
    assert found == expected


def test_the_date_range_is_inclusive(people, talk, client_of, backdate):
    old = backdate(talk(people["emi"], leave_talk()), days=10)
    new = talk(people["emi"], leave_talk())
    today = timezone.localdate().isoformat()
    page = client_of(people["aiko"]).get(f"/audit/?since={today}&until={today}").content.decode()
    assert str(new.public_id) in page and str(old.public_id) not in page


def test_audit_verify_checks_the_access_log_chain_too(people, client_of):
    from django.core.management import CommandError, call_command
    from django.db import connection

    aiko = client_of(people["aiko"])
    aiko.get("/audit/")
    aiko.get("/audit/access-log/")
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "2 access-log entries: the chains are intact" in out.getvalue()
    first = AccessLogEntry.objects.order_by("pk").first()
    assert first is not None
    with connection.cursor() as cursor:  # what a database superuser could do behind Koe's back
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("DELETE FROM audit_accesslogentry WHERE id = %s", [first.pk])
        cursor.execute("SET session_replication_role = DEFAULT")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 problem"):
        call_command("audit_verify", stdout=out)
    assert "access log entry" in out.getvalue()


def test_an_invalid_filter_shows_nothing_rather_than_everything(people, talk, client_of):
    conversation = talk(people["emi"], leave_talk())
    aiko = client_of(people["aiko"])
    page = aiko.get("/audit/?model=no-such-model&since=yesterday")
    assert page.status_code == 400 and str(conversation.public_id) not in page.content.decode()
    assert aiko.get("/audit/export.csv?since=not-a-date").status_code == 400
    assert not AccessLogEntry.objects.exists()
