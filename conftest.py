"""Fixtures shared by every app's tests: servers the tests start themselves on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_env_for_tests() -> dict[str, str]:
    """Environment that points a server or worker process at this session's test database."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    if settings.DATABASE_URL:
        user = quote(db.get("USER") or "")
        password = quote(db.get("PASSWORD") or "")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = db.get("HOST") or "127.0.0.1"
        port = db.get("PORT") or "5432"
        return {"DATABASE_URL": f"postgres://{auth}{host}:{port}/{db['NAME']}"}
    return {"KOE_DB_NAME": db["NAME"], "KOE_VAR_DIR": str(settings.KOE_VAR_DIR)}


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory) -> Iterator[str]:
    """A private Redis server for the session (Debian's redis-server, installed by ./koe test)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run ./koe test, which installs it")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("redis-server did not start")
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def backdate(db):
    """Move a conversation's start into the past, as only someone with the database's
    superuser could (Koe refuses to change a conversation's start)."""
    from django.db import connection

    def move(conversation, *, days: int):
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
            try:
                cursor.execute(
                    "UPDATE voice_conversation SET started_at = started_at - %s * interval '1 day'"
                    " WHERE id = %s",
                    [days, conversation.pk],
                )
            finally:
                cursor.execute("SET session_replication_role = DEFAULT")
        conversation.refresh_from_db()
        return conversation

    return move
