"""A task worker killed in the middle of indexing a document (SIGKILL: out of memory, a node
lost): no partial passages are ever searchable, and the document is indexed again by the next
worker, or failed with a clear message after MAX_INGEST_ATTEMPTS tries."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from conftest import database_env_for_tests
from knowledge.models import MAX_INGEST_ATTEMPTS, Chunk, Document
from knowledge.services import document_create, documents_recover_stalled

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ["leave", "travel", "security", "expenses", "payroll", "training", "equipment"]


def long_handbook() -> bytes:
    """A handbook of a few hundred passages: long enough to kill its indexing midway."""
    sections = []
    for number in range(120):
        topic = TOPICS[number % len(TOPICS)]
        sentences = " ".join(
            f"Rule {number}.{line} on {topic}: employees in office {number % 13} follow "
            f"procedure {line * 7 + number} and keep the record for {line + 2} years."
            for line in range(12)
        )
        sections.append(f"## {topic.title()} rule {number}\n\n{sentences}\n")
    return ("# Long handbook\n\n" + "\n".join(sections)).encode()


@pytest.fixture
def database_tasks(settings, tmp_path):
    """Tasks go to the database queue (as in production), and the worker reads the uploads."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    settings.MEDIA_ROOT = tmp_path


def start_worker(media_root: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **database_env_for_tests(),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "KOE_TASK_BACKEND": "django_tasks_db.DatabaseBackend",
        "KOE_MEDIA_DIR": str(media_root),
    }
    env.pop("REDIS_URL", None)
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(check, within_s: float = 120.0, every_s: float = 0.05):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every_s)
    raise AssertionError("timed out")


def test_a_worker_killed_midway_leaves_no_passages_and_the_next_one_indexes_it(
    database_tasks, tmp_path
):
    document = document_create(uploaded_by=None, filename="handbook.md", data=long_handbook())
    worker = start_worker(tmp_path)
    try:
        # Killed while the passages are being embedded (progress between 5 and 95 %).
        wait_for(lambda: Document.objects.get(pk=document.pk).progress >= 20)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    document.refresh_from_db()
    assert document.status == Document.Status.PROCESSING and document.progress < 95
    assert Chunk.objects.filter(document=document).count() == 0  # nothing half-indexed
    assert document.ingest_attempts == 1
    assert DBTaskResult.objects.filter(status="RUNNING").count() == 1  # orphaned by the kill

    # Not stalled yet: a slow worker is left alone.
    recovery = documents_recover_stalled()
    assert recovery.requeued == [] and recovery.failed == []
    # Once it has made no progress for the stall time, it is queued again, and indexed.
    recovery = documents_recover_stalled(stalled_after=timedelta(0))
    assert recovery.requeued == [document.pk]
    document.refresh_from_db()
    assert document.status == Document.Status.QUEUED

    worker = start_worker(tmp_path)
    try:
        wait_for(
            lambda: Document.objects.get(pk=document.pk).status == Document.Status.READY,
            within_s=300,
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    document.refresh_from_db()
    assert document.ingest_attempts == 2 and document.error == ""
    orders = list(Chunk.objects.filter(document=document).values_list("order", flat=True))
    assert len(orders) > 100 and orders == sorted(orders) and len(set(orders)) == len(orders)


def test_a_document_that_keeps_killing_its_worker_is_failed_with_a_clear_message(
    database_tasks,
):
    document = document_create(
        uploaded_by=None, filename="huge.md", data=b"# Huge\n\ntext", enqueue=False
    )
    Document.objects.filter(pk=document.pk).update(
        status=Document.Status.PROCESSING, ingest_attempts=MAX_INGEST_ATTEMPTS
    )
    recovery = documents_recover_stalled(stalled_after=timedelta(0))
    assert recovery.failed == [document.pk]
    document.refresh_from_db()
    assert document.status == Document.Status.FAILED
    assert "stopped 3 times" in document.error
    assert not DBTaskResult.objects.exists()  # not queued again


def test_the_periodic_check_starts_once_even_after_a_killed_run(database_tasks):
    from knowledge.tasks import documents_recover_task

    call_command("knowledge_recover", "--schedule", stdout=io.StringIO())
    call_command("knowledge_recover", "--schedule", stdout=io.StringIO())
    waiting = DBTaskResult.objects.filter(task_path=documents_recover_task.module_path)
    assert waiting.count() == 1
    # A run left RUNNING by a killed worker will never queue the next one: a new chain starts.
    waiting.update(status="RUNNING")
    call_command("knowledge_recover", "--schedule", stdout=io.StringIO())
    assert waiting.filter(status="READY").count() == 1
