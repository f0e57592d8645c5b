import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from accounts.roles import Role
from accounts.services import user_roles_set
from knowledge.embeddings import LOCAL_MODEL, embedder_default
from knowledge.models import Chunk, Document
from knowledge.selectors import chunk_search
from knowledge.tests.fake_embeddings import FakeEmbeddingsServer
from knowledge.vector_index import _index_valid, vector_index_name

pytestmark = pytest.mark.django_db


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "handbook.md").write_text("# Leave\n\nTwenty days of paid leave.", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "規程.txt").write_bytes("出張は新幹線の普通車を使います。".encode("cp932"))
    (tmp_path / "sub" / "broken.pdf").write_bytes(b"%PDF-1.4 junk")
    (tmp_path / "notes.exe").write_bytes(b"MZ")  # not a supported type: ignored in folders
    return tmp_path


def test_ingest_a_folder_then_search_as_users(folder, capsys):
    finance = Group.objects.create(name="finance")
    call_command("knowledge_ingest", str(folder), "--groups", "finance")
    out = capsys.readouterr().out
    assert "2 indexed, 1 failed, 0 already there" in out
    assert "damaged" in out
    assert set(Document.objects.values_list("status", flat=True)) == {"ready", "failed"}

    call_command("knowledge_ingest", str(folder / "handbook.md"))
    assert "0 indexed, 0 failed, 1 already there" in capsys.readouterr().out

    member = get_user_model().objects.create_user("ken")
    user_roles_set(user=member, roles=[Role.EMPLOYEE])
    member.groups.add(finance)
    call_command("knowledge_search", "--user", "ken", "出張の交通手段")
    out = capsys.readouterr().out
    assert out.startswith("1. [") and "新幹線" in out

    outsider = get_user_model().objects.create_user("emi")
    user_roles_set(user=outsider, roles=[Role.EMPLOYEE])
    call_command("knowledge_search", "--user", "emi", "paid leave")
    assert capsys.readouterr().out.strip() == "no passages found"


def test_unknown_group_or_path_is_refused(folder):
    with pytest.raises(CommandError, match="unknown groups: legal"):
        call_command("knowledge_ingest", str(folder), "--groups", "legal")
    with pytest.raises(CommandError, match="no such file"):
        call_command("knowledge_ingest", str(folder / "missing.md"))


@pytest.fixture
def switch_to_remote_model(settings):
    """Call it to switch the configured model to OpenAI's (a fake on 127.0.0.1), 256 dimensions."""
    with FakeEmbeddingsServer() as fake:

        def switch():
            settings.KOE_EMBEDDING_PROVIDER = "openai"
            settings.OPENAI_BASE_URL = fake.url
            settings.OPENAI_API_KEY = fake.key
            settings.KOE_EMBEDDING_MODEL = "text-embedding-3-small"
            settings.KOE_EMBEDDING_DIMENSIONS = 256
            embedder_default.cache_clear()

        yield switch
    embedder_default.cache_clear()


def test_switching_the_model_then_reindexing(folder, capsys, switch_to_remote_model):
    call_command("knowledge_ingest", str(folder))
    assert set(Chunk.objects.values_list("embedding_model", flat=True)) == {LOCAL_MODEL}
    local_index = vector_index_name(model=LOCAL_MODEL, dimensions=384)
    assert _index_valid(local_index)
    switch_to_remote_model()
    capsys.readouterr()

    reader = get_user_model().objects.create_user("emi")
    user_roles_set(user=reader, roles=[Role.EMPLOYEE])
    # Mid-switch: no vector of the new model exists yet, the old ones are never compared
    # with it (a different size would be an error), and words still find the passage.
    hits = chunk_search(user=reader, query="paid leave", k=3)
    assert hits and hits[0].title == "Leave"

    call_command("knowledge_reindex", "--stale")
    out = capsys.readouterr().out
    assert "model: text-embedding-3-small (256 dimensions); 3 documents" in out  # 2 + 1 failed
    assert "2 re-indexed, 1 failed; 1 unused vector indexes dropped" in out
    models = set(Chunk.objects.values_list("embedding_model", "embedding_dimensions"))
    assert models == {("text-embedding-3-small", 256)}
    assert _index_valid(vector_index_name(model="text-embedding-3-small", dimensions=256))
    assert _index_valid(local_index) is None
    assert chunk_search(user=reader, query="How many days of paid leave?", k=1)[0].title == "Leave"

    call_command("knowledge_reindex", "--stale")
    assert "; 1 documents" in capsys.readouterr().out  # only the failed PDF is left


def test_reindex_in_the_background_queues_every_document(
    folder, capsys, django_capture_on_commit_callbacks
):
    call_command("knowledge_ingest", str(folder))
    with django_capture_on_commit_callbacks() as enqueued:
        call_command("knowledge_reindex", "--background")
    assert len(enqueued) == 3  # one ingestion task each, sent once the commit happens
    assert "3 queued for the worker" in capsys.readouterr().out
    assert set(Document.objects.values_list("status", flat=True)) == {"queued"}
