import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from accounts.roles import Role
from accounts.services import user_roles_set
from knowledge.models import Document

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
