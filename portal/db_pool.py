"""What a pooled database connection forgets when it goes back to the pool."""

from __future__ import annotations

from typing import Any


def connection_reset(connection: Any) -> None:
    """Session-level advisory locks end with a connection, and Koe's code (the vector index
    build) relies on that when a holder fails: a pooled connection must not carry one over to
    its next user. (Koe sets everything else transaction-locally.)"""
    connection.execute("SELECT pg_advisory_unlock_all()")
