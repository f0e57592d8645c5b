from collections.abc import AsyncIterator

import pytest
from channels.db import database_sync_to_async
from django.db import connections

from voice.tests.fake_upstream import FakeUpstream


@pytest.fixture(autouse=True)
async def close_db_connections_of_worker_threads() -> AsyncIterator[None]:
    """Async code reaches the database from asgiref's thread; close that connection after each
    test, or the test database cannot be dropped at the end."""
    yield
    await database_sync_to_async(connections.close_all)()


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    """The scripted Realtime server on 127.0.0.1 (test_consumers has its own, with settings)."""
    server = await FakeUpstream().start()
    yield server
    await server.stop()
