"""The scripted Realtime server every session test talks to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from voice.tests.fake_upstream import FakeUpstream


@pytest.fixture
async def fake() -> AsyncIterator[FakeUpstream]:
    server = await FakeUpstream().start()
    yield server
    await server.stop()
