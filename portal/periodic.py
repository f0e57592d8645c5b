"""Periodic work on django.tasks: a task that queues its own next run, started once."""

from __future__ import annotations

from typing import Any

from django_tasks_db.models import DBTaskResult


def periodic_task_start(task: Any) -> bool:
    """Queue `task` unless a run is already waiting; True if it was queued now.

    Only a waiting run counts: a run left RUNNING by a worker that was killed will never queue
    its successor, so it must not stop a new chain from starting.
    """
    if DBTaskResult.objects.filter(task_path=task.module_path, status="READY").exists():
        return False
    task.enqueue()
    return True
