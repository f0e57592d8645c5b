"""Hostile uploads and forged requests: path traversal in file names, script in file names
and titles, and CSRF on every form that changes something."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from knowledge.models import Document
from knowledge.services import document_create

pytestmark = pytest.mark.django_db

POLICY = b"# Leave\n\nTwenty days a year.\n"


@pytest.mark.parametrize(
    "hostile",
    [
        "../../../../etc/passwd.md",
        "..\\..\\windows\\system32\\evil.md",
        "/etc/cron.d/koe.md",
        "leave\x00.md",
        "....//....//secrets.md",
    ],
)
def test_a_file_name_cannot_lead_outside_the_upload_folder(hostile, committed):
    document = committed(document_create, uploaded_by=None, filename=hostile, data=POLICY)
    stored = (Path(settings.MEDIA_ROOT) / document.file.name).resolve()
    assert stored.is_relative_to(Path(settings.MEDIA_ROOT).resolve() / "documents")
    assert ".." not in document.file.name and "\x00" not in document.file.name
    assert stored.read_bytes() == POLICY


def test_script_in_a_file_name_is_shown_as_text(make_user, committed):
    name = '<img src=x onerror=alert("koe")><svg onload=alert(1)>.md'
    # No heading: the title is the file's name.
    committed(document_create, uploaded_by=None, filename=name, data=b"Twenty days a year.\n")
    admin = Client()
    admin.force_login(make_user("kenji", Role.KNOWLEDGE_ADMIN))
    employee = Client()
    employee.force_login(make_user("emi", Role.EMPLOYEE))
    for client, url in (
        (admin, reverse("admin:knowledge_document_changelist")),
        (employee, reverse("knowledge:search") + "?q=twenty+days"),
    ):
        page = client.get(url).content.decode()
        assert "<img src=x" not in page and "<svg onload" not in page
        assert "&lt;img src=x onerror=alert(&quot;koe&quot;)&gt;" in page


def test_every_form_that_changes_something_needs_its_csrf_token(make_user, committed):
    document = committed(document_create, uploaded_by=None, filename="leave.md", data=POLICY)
    title = document.title
    forged = Client(enforce_csrf_checks=True)
    # Signing in (local accounts) without the token from the form.
    assert forged.post("/accounts/login/", {"login": "kenji", "password": "x"}).status_code == 403
    forged.force_login(make_user("kenji", Role.KNOWLEDGE_ADMIN))
    posts = {
        "/accounts/logout/": {},
        reverse("admin:knowledge_document_add"): {
            "uploads": [SimpleUploadedFile("travel.md", b"# Travel\n")]
        },
        reverse("admin:knowledge_document_changelist"): {
            "action": "reindex",
            "_selected_action": [document.pk],
        },
        reverse("admin:knowledge_document_change", args=[document.pk]): {"title": "Forged"},
        reverse("admin:knowledge_document_delete", args=[document.pk]): {"post": "yes"},
    }
    for url, data in posts.items():
        assert forged.post(url, data).status_code == 403, url
    document.refresh_from_db()
    assert document.title == title and Document.objects.count() == 1
