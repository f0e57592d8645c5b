"""The employee pages: search, passage view and file download, each behind the user's access."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from knowledge.selectors import chunk_search
from knowledge.services import document_create

pytestmark = pytest.mark.django_db

SEARCH = reverse("knowledge:search")
SALARIES = (
    b"# Salaries\n\n## Bands\n\nThe salary bands for 2026 are confidential.\n\n"
    b"## Review\n\nReviews happen in March."
)


@pytest.fixture
def library(committed):
    finance = Group.objects.create(name="finance")
    open_doc = committed(
        document_create,
        uploaded_by=None,
        filename="leave.html",
        data=b"<h1>Leave</h1><p>Employees get twenty days of paid leave.</p>"
        b"<script>alert(1)</script>",
    )
    secret = committed(
        document_create, uploaded_by=None, filename="salaries.md", data=SALARIES, groups=[finance]
    )
    return finance, open_doc, secret


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def test_search_page_lists_passages_with_links(library, make_user):
    client = client_for(make_user("emi", Role.EMPLOYEE))
    page = client.get(SEARCH, {"q": "paid leave days"}).content.decode()
    _, open_doc, _ = library
    assert "twenty days of paid leave" in page
    assert reverse("knowledge:passage", args=[open_doc.public_id, 0]) in page
    assert "Salaries" not in page


def test_search_page_without_a_query_shows_the_form_only(make_user):
    page = client_for(make_user("emi", Role.EMPLOYEE)).get(SEARCH)
    assert page.status_code == 200 and 'name="q"' in page.content.decode()


def test_search_page_refuses_users_without_a_reading_role(library, make_user):
    response = client_for(make_user("audrey", Role.AUDITOR)).get(SEARCH, {"q": "salary"})
    assert response.status_code == 403
    assert b"confidential" not in response.content
    assert Client().get(SEARCH, {"q": "salary"}).status_code == 302  # to the sign-in


def test_search_page_says_so_when_search_is_down(library, make_user, monkeypatch):
    import knowledge.views as views

    def broken(**kwargs):
        raise ConnectionError("database restarting")

    monkeypatch.setattr(views, "chunk_search", broken)
    response = client_for(make_user("emi", Role.EMPLOYEE)).get(SEARCH, {"q": "leave"})
    assert response.status_code == 503
    assert "Search is unavailable right now" in response.content.decode()


def test_passage_view_shows_the_passage_and_its_neighbours(library, make_user):
    finance, _, secret = library
    insider = make_user("ken", Role.EMPLOYEE, groups=[finance])
    hit = chunk_search(user=insider, query="When do salary reviews happen?", k=1)[0]
    assert hit.title == "Salaries"
    page = client_for(insider).get(hit.url).content.decode()
    assert "Reviews happen in March." in page
    assert "Salaries > Review" in page
    assert "The salary bands for 2026 are confidential." in page  # the passage before
    assert reverse("knowledge:file", args=[secret.public_id]) in page


def test_a_restricted_passage_is_a_404_for_everyone_else(library, make_user):
    _, _, secret = library
    url = reverse("knowledge:passage", args=[secret.public_id, 0])
    outsider = client_for(make_user("emi", Role.EMPLOYEE))
    missing = reverse("knowledge:passage", args=["00000000-0000-4000-8000-000000000000", 0])
    assert outsider.get(url).status_code == 404
    # Indistinguishable from a document that does not exist.
    assert outsider.get(missing).status_code == 404
    assert client_for(make_user("audrey", Role.AUDITOR)).get(url).status_code == 403
    assert Client().get(url).status_code == 302


def test_a_passage_number_past_the_end_is_a_404(library, make_user):
    _, open_doc, _ = library
    url = reverse("knowledge:passage", args=[open_doc.public_id, 999])
    assert client_for(make_user("emi", Role.EMPLOYEE)).get(url).status_code == 404


def test_the_original_file_downloads_as_an_attachment_only_for_readers(library, make_user):
    finance, open_doc, secret = library
    reader = client_for(make_user("emi", Role.EMPLOYEE))
    response = reader.get(reverse("knowledge:file", args=[open_doc.public_id]))
    assert response.status_code == 200
    # An uploaded HTML file never renders inside Koe's origin.
    assert response["Content-Disposition"].startswith("attachment")
    assert b"<script>" in b"".join(response.streaming_content)
    assert reader.get(reverse("knowledge:file", args=[secret.public_id])).status_code == 404
    insider = client_for(make_user("ken", Role.EMPLOYEE, groups=[finance]))
    assert insider.get(reverse("knowledge:file", args=[secret.public_id])).status_code == 200


def test_a_file_missing_from_storage_is_a_clear_404(library, make_user):
    _, open_doc, _ = library
    open_doc.file.storage.delete(open_doc.file.name)
    response = client_for(make_user("emi", Role.EMPLOYEE)).get(
        reverse("knowledge:file", args=[open_doc.public_id])
    )
    assert response.status_code == 404
