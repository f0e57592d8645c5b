"""How long the embedded PostgreSQL takes to be ready, cold and warm.

Run: .venv/bin/python bench/embedded_db.py [rounds]

Prints one table measured in this run: first start of a fresh cluster (initdb + start), a
restart of an existing cluster, joining a server this process already holds, and a first
connection with a query over the Unix socket (psycopg), with ratios against the restart.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from portal import embedded_db


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def first_query(server: embedded_db.EmbeddedServer) -> None:
    with psycopg.connect(**server.connection_params(dbname="postgres")) as conn:
        conn.execute("SELECT 1").fetchone()


def main(rounds: int) -> None:
    cold, restart, join, query = [], [], [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="koe-bench-") as tmp:
            start = partial(embedded_db.embedded_server_start, data_dir=Path(tmp) / "pg")
            cold.append(timed(start))
            embedded_db.embedded_server_stop(data_dir=Path(tmp) / "pg")
            restart.append(timed(start))
            join.append(timed(start))
            query.append(timed(partial(first_query, start())))
            embedded_db.embedded_server_stop(data_dir=Path(tmp) / "pg")

    base = statistics.median(restart)
    print(f"embedded PostgreSQL readiness, median of {rounds} rounds")
    print(f"{'step':<44} {'median s':>9} {'x restart':>10}")
    for name, values in [
        ("first start (initdb + start)", cold),
        ("restart of an existing cluster", restart),
        ("join a running server (same process)", join),
        ("connect + SELECT 1 over the Unix socket", query),
    ]:
        med = statistics.median(values)
        print(f"{name:<44} {med:>9.4f} {med / base:>10.3f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
