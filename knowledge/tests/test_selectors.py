"""chunk_search: hybrid retrieval with the access filter inside the query."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.roles import Role
from accounts.services import user_roles_set
from knowledge.selectors import chunk_search, documents_visible
from knowledge.services import document_create

pytestmark = pytest.mark.django_db


def employee(username: str, *groups: Group):
    user = get_user_model().objects.create_user(username)
    user_roles_set(user=user, roles=[Role.EMPLOYEE])
    user.groups.add(*groups)
    return user


@pytest.fixture
def library(committed):
    finance = Group.objects.create(name="finance")
    docs = {
        "leave": committed(
            document_create,
            uploaded_by=None,
            filename="leave.md",
            data=b"# Leave\n\nEmployees receive twenty days of paid leave per year.",
        ),
        "salaries": committed(
            document_create,
            uploaded_by=None,
            filename="salaries.md",
            data=b"# Salaries\n\nThe salary bands for 2026 are confidential.",
            groups=[finance],
        ),
        "kyuka": committed(
            document_create,
            uploaded_by=None,
            filename="kyuka.md",
            data="# 休暇\n\n有給休暇は年間二十日です。申請は上長に行います。".encode(),
        ),
        "canteen": committed(
            document_create,
            uploaded_by=None,
            filename="canteen.md",
            data=b"# Canteen\n\nThe canteen on the third floor opens at noon.",
        ),
    }
    return finance, docs


def test_best_passage_comes_first_and_carries_its_source(library):
    _, docs = library
    hits = chunk_search(user=employee("emi"), query="How many days of paid leave?", k=3)
    assert hits[0].title == "Leave" and "twenty days" in hits[0].text
    assert hits[0].document_id == str(docs["leave"].public_id)
    assert hits[0].location == "Leave"


def test_japanese_question_finds_the_japanese_passage(library):
    hits = chunk_search(user=employee("emi"), query="有給休暇は何日ですか", k=2)
    assert hits[0].title == "休暇"


def test_restricted_documents_only_for_their_groups(library):
    finance, _ = library
    outsider = employee("emi")
    insider = employee("ken", finance)
    assert all(
        h.title != "Salaries" for h in chunk_search(user=outsider, query="salary bands", k=10)
    )
    assert chunk_search(user=insider, query="salary bands", k=1)[0].title == "Salaries"
    assert not documents_visible(user=outsider).filter(title="Salaries").exists()


def test_k_results_come_back_when_k_exist_despite_the_filter(library):
    hits = chunk_search(user=employee("emi"), query="anything at all", k=3)
    assert len(hits) == 3  # four documents, one hidden: exactly three visible passages


def test_users_without_a_role_find_nothing(library):
    nobody = get_user_model().objects.create_user("nobody")
    assert chunk_search(user=nobody, query="paid leave", k=5) == []


@pytest.mark.django_db(transaction=True)
async def test_the_voice_tool_searches_with_the_users_rights(library, settings):
    from asgiref.sync import sync_to_async
    from django.db import connections

    from voice.knowledge import search_knowledge_tool

    settings.KOE_KNOWLEDGE_SEARCH = "knowledge.selectors.chunk_search"
    outsider = await sync_to_async(employee)("emi")
    outcome = await search_knowledge_tool(user=outsider)({"query": "salary bands 2026"})
    assert outcome.citations  # it did search, and found what emi may read
    assert all(c.title != "Salaries" for c in outcome.citations)
    assert "confidential" not in outcome.output
    await sync_to_async(connections.close_all)()


def test_search_falls_back_to_words_when_the_embedding_service_is_down(library):
    from knowledge.embeddings import EmbeddingError, embedder_default

    local = embedder_default()

    class Down:
        model, dimensions = local.model, local.dimensions

        def query(self, text):
            raise EmbeddingError("The embedding service is busy or unreachable.")

        def passages(self, texts):
            raise AssertionError("searching embeds no passages")

    hits = chunk_search(user=employee("emi"), query="canteen floor", k=3, embedder=Down())
    assert hits and hits[0].title == "Canteen"
