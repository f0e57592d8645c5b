"""The knowledge admin through Django's test client: who gets in, uploads, actions, progress."""

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from knowledge.models import Chunk, Document
from knowledge.services import document_create

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:knowledge_document_changelist")
ADD = reverse("admin:knowledge_document_add")
PROGRESS = reverse("admin:knowledge_document_progress")
LEAVE = b"# Leave\n\nEmployees get twenty days of paid leave every year."
CANTEEN = b"# Canteen\n\nThe canteen on the third floor opens at noon."


@pytest.fixture
def admin_client(make_user):
    client = Client()
    client.force_login(make_user("kenji", Role.KNOWLEDGE_ADMIN))
    return client


def upload(name, data):
    return SimpleUploadedFile(name, data)


def change_url(document):
    return reverse("admin:knowledge_document_change", args=[document.pk])


@pytest.mark.parametrize(
    ("roles", "staff"),
    [((Role.EMPLOYEE,), False), ((Role.AUDITOR,), False), ((Role.EMPLOYEE,), True)],
)
def test_only_knowledge_admins_reach_the_documents(make_user, roles, staff, committed):
    document = committed(document_create, uploaded_by=None, filename="leave.md", data=LEAVE)
    user = make_user("emi", *roles)
    if staff:  # staff by some other route still is no knowledge admin
        user.is_staff = True
        user.save()
    client = Client()
    client.force_login(user)
    for url in (CHANGELIST, ADD, change_url(document), f"{PROGRESS}?id={document.public_id}"):
        response = client.get(url)
        assert response.status_code in (302, 403), url
        assert str(document.public_id).encode() not in response.content
        assert b"leave.md" not in response.content
    response = client.post(ADD, {"uploads": [upload("x.md", CANTEEN)]})
    assert response.status_code in (302, 403)
    assert Document.objects.count() == 1


def test_the_changelist_shows_status_progress_and_readers(admin_client, committed):
    finance = Group.objects.create(name="finance")
    committed(document_create, uploaded_by=None, filename="leave.md", data=LEAVE)
    document_create(uploaded_by=None, filename="canteen.md", data=CANTEEN, groups=[finance])
    page = admin_client.get(CHANGELIST).content.decode()
    assert "every employee" in page and "finance" in page
    assert '<progress max="100" value="0">' in page  # the queued one
    assert 'data-status="ready"' in page
    assert "koe/admin_progress.js" in page


def test_many_files_upload_at_once_with_groups_and_each_bad_one_is_reported(
    admin_client, committed, django_capture_on_commit_callbacks
):
    committed(document_create, uploaded_by=None, filename="old.md", data=CANTEEN)
    finance = Group.objects.create(name="finance")
    assert b"multiple" in admin_client.get(ADD).content
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            ADD,
            {
                "uploads": [
                    upload("leave.md", LEAVE),
                    upload("notes.txt", "社内規程。年次有給休暇は二十日。".encode("shift_jis")),
                    upload("again.md", CANTEEN),
                    upload("tool.exe", b"MZ"),
                ],
                "allowed_groups": [finance.pk],
            },
            follow=True,
        )
    text = response.content.decode()
    assert "2 queued for indexing: leave.md, notes.txt." in text
    assert "“again.md” was not added: This file is already in the knowledge base as" in text
    assert "“tool.exe” was refused: .exe files are not supported" in text
    created = Document.objects.exclude(title="Canteen").order_by("title")
    assert [d.title for d in created] == ["Leave", "notes"]
    for document in created:
        assert document.status == Document.Status.READY
        assert document.uploaded_by is not None and document.uploaded_by.username == "kenji"
        assert list(document.allowed_groups.all()) == [finance]
    assert "二十日" in Chunk.objects.get(document__title="notes").text


def test_an_upload_without_files_asks_for_them(admin_client):
    response = admin_client.post(ADD, {})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not Document.objects.exists()


def test_editing_the_title_does_not_undo_the_workers_progress(admin_client, monkeypatch):
    from knowledge.admin import DocumentAdmin

    document = document_create(uploaded_by=None, filename="leave.md", data=LEAVE)
    load = DocumentAdmin.get_object

    def load_then_worker_finishes(self, request, object_id, from_field=None):
        loaded = load(self, request, object_id, from_field)
        # The worker finishes after the admin loaded the (queued) document.
        Document.objects.filter(pk=document.pk).update(status="ready", progress=100)
        return loaded

    monkeypatch.setattr(DocumentAdmin, "get_object", load_then_worker_finishes)
    response = admin_client.post(change_url(document), {"title": "Leave policy"})
    assert response.status_code == 302
    document.refresh_from_db()
    assert (document.title, document.status, document.progress) == ("Leave policy", "ready", 100)


def test_a_new_version_from_the_change_form_replaces_the_passages(
    admin_client, committed, django_capture_on_commit_callbacks
):
    document = committed(document_create, uploaded_by=None, filename="leave.md", data=LEAVE)
    old_file = document.file.name
    new = b"# Leave\n\nFrom 2027 employees get twenty-five days of paid leave."
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            change_url(document), {"title": "Leave", "new_version": upload("leave-2027.md", new)}
        )
    assert response.status_code == 302
    document.refresh_from_db()
    assert (document.version, document.status) == (2, Document.Status.READY)
    assert "twenty-five" in " ".join(document.chunks.values_list("text", flat=True))
    assert not document.file.storage.exists(old_file)


def test_a_duplicate_new_version_is_refused_on_the_form(admin_client, committed):
    document = committed(document_create, uploaded_by=None, filename="leave.md", data=LEAVE)
    committed(document_create, uploaded_by=None, filename="canteen.md", data=CANTEEN)
    response = admin_client.post(
        change_url(document), {"title": "Leave", "new_version": upload("c.md", CANTEEN)}
    )
    assert response.status_code == 200
    assert "already in the knowledge base as &#x27;Canteen&#x27;" in response.content.decode()
    document.refresh_from_db()
    assert document.version == 1


def action(client, name, *documents):
    return client.post(
        CHANGELIST,
        {"action": name, "_selected_action": [d.pk for d in documents]},
        follow=True,
    )


def test_retry_requeues_only_failed_documents_and_they_recover(
    admin_client, committed, django_capture_on_commit_callbacks, monkeypatch
):
    import knowledge.services as services

    good = committed(document_create, uploaded_by=None, filename="canteen.md", data=CANTEEN)
    real = services.embedder_default()

    class Outage:
        model, dimensions = real.model, real.dimensions

        def passages(self, texts):
            raise ConnectionError("embedding service unreachable")

    monkeypatch.setattr(services, "embedder_default", Outage)
    failed = committed(document_create, uploaded_by=None, filename="leave.md", data=LEAVE)
    assert failed.status == Document.Status.FAILED
    monkeypatch.setattr(services, "embedder_default", lambda: real)
    with django_capture_on_commit_callbacks(execute=True):
        response = action(admin_client, "retry_failed", good, failed)
    assert (
        "1 queued again. 1 that had neither failed nor stalled were left alone."
        in response.content.decode()
    )
    failed.refresh_from_db()
    assert failed.status == Document.Status.READY and failed.chunks.exists()


def test_reindex_embeds_again_and_keeps_passages_meanwhile(
    admin_client, committed, django_capture_on_commit_callbacks
):
    document = committed(document_create, uploaded_by=None, filename="leave.md", data=LEAVE)
    before = set(document.chunks.values_list("pk", flat=True))
    action(admin_client, "reindex", document)  # queued; nothing has run yet
    document.refresh_from_db()
    assert document.status == Document.Status.QUEUED
    assert set(document.chunks.values_list("pk", flat=True)) == before
    with django_capture_on_commit_callbacks(execute=True):
        action(admin_client, "reindex", document)
    document.refresh_from_db()
    assert document.status == Document.Status.READY
    after = set(document.chunks.values_list("pk", flat=True))
    assert after and not after & before


def test_delete_removes_passages_and_the_file(
    admin_client, committed, django_capture_on_commit_callbacks
):
    document = committed(document_create, uploaded_by=None, filename="leave.md", data=LEAVE)
    storage, name = document.file.storage, document.file.name
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:knowledge_document_delete", args=[document.pk]), {"post": "yes"}
        )
    assert response.status_code == 302
    assert not Document.objects.exists() and not Chunk.objects.exists()
    assert not storage.exists(name)


def test_progress_reports_the_documents_asked_for(admin_client):
    queued = document_create(uploaded_by=None, filename="leave.md", data=LEAVE, enqueue=False)
    Document.objects.filter(pk=queued.pk).update(status="processing", progress=40)
    answer = admin_client.get(PROGRESS, {"id": [str(queued.public_id), "not-a-uuid"]}).json()
    assert answer == {
        str(queued.public_id): {
            "status": "processing",
            "label": "processing",
            "progress": 40,
            "error": "",
        }
    }


def test_a_superuser_manages_every_document_but_reads_only_their_own_as_an_employee(committed):
    from django.contrib.auth import get_user_model

    from accounts.services import user_roles_set
    from knowledge.selectors import chunk_search

    finance = Group.objects.create(name="finance")
    committed(document_create, uploaded_by=None, filename="leave.md", data=LEAVE, groups=[finance])
    root = get_user_model().objects.create_superuser("root")
    client = Client()
    client.force_login(root)
    assert "Leave" in client.get(CHANGELIST).content.decode()
    user_roles_set(user=root, roles=[Role.EMPLOYEE])
    assert chunk_search(user=root, query="paid leave", k=5) == []
    assert (
        "twenty days"
        not in client.get(reverse("knowledge:search"), {"q": "leave"}).content.decode()
    )


def test_a_stalled_document_says_so_and_retry_takes_it(
    admin_client, committed, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    document = committed(document_create, uploaded_by=None, filename="leave.md", data=LEAVE)
    # Its worker died an hour ago in the middle of it.
    Document.objects.filter(pk=document.pk).update(
        status="processing", progress=40, updated_at=timezone.now() - timedelta(hours=1)
    )
    page = admin_client.get(CHANGELIST).content.decode()
    assert 'data-status="stalled"' in page and "its worker stopped" in page
    assert (
        admin_client.get(PROGRESS, {"id": str(document.public_id)}).json()[str(document.public_id)][
            "status"
        ]
        == "stalled"
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = action(admin_client, "retry_failed", document)
    assert "1 queued again." in response.content.decode()
    document.refresh_from_db()
    assert document.status == Document.Status.READY


def test_uploads_and_actions_leave_admin_log_entries(
    admin_client, committed, django_capture_on_commit_callbacks
):
    from django.contrib.admin.models import LogEntry

    admin_client.post(ADD, {"uploads": [upload("leave.md", LEAVE)]})
    document = Document.objects.get()
    action(admin_client, "reindex", document)
    messages = list(LogEntry.objects.order_by("pk").values_list("object_repr", "change_message"))
    assert [m for _, m in messages] == ["Uploaded.", "Queued for indexing again."]


def test_only_organisation_groups_are_offered_as_readers(admin_client, committed):
    finance = Group.objects.create(name="finance")
    document = committed(document_create, uploaded_by=None, filename="leave.md", data=LEAVE)
    for url in (ADD, change_url(document)):
        page = admin_client.get(url).content.decode()
        assert f'<option value="{finance.pk}">finance</option>' in page, url
        for role in Role:
            role_group = Group.objects.get(name=role.value)
            assert f'<option value="{role_group.pk}">' not in page, (url, role)
    # And a role group cannot be sent either.
    employee_group = Group.objects.get(name=Role.EMPLOYEE.value)
    response = admin_client.post(
        change_url(document), {"title": "Leave", "allowed_groups": [employee_group.pk]}
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
