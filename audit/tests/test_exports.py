"""The exports, through Koe's ASGI handler as a browser gets them: streamed, complete, safe."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from accounts.roles import Role
from audit.models import AccessLogEntry
from audit.tests.conftest import leave_talk

pytestmark = pytest.mark.django_db(transaction=True)


async def client_of(user: Any) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(user)
    return client


async def body(response: Any) -> str:
    assert response.streaming
    chunks = [chunk async for chunk in response.streaming_content]
    return b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks).decode("utf-8")


async def test_exports_carry_every_record_of_the_filtered_set(person, talk):
    emi = await sync_to_async(person)("emi", Role.EMPLOYEE)
    taro = await sync_to_async(person)("taro", Role.EMPLOYEE)
    aiko = await client_of(await sync_to_async(person)("aiko", Role.AUDITOR))
    leave = await sync_to_async(talk)(emi, leave_talk())
    await sync_to_async(talk)(
        taro, [("transcript", {"item_id": "k_1", "role": "user", "text": "他の人"})]
    )

    response = await aiko.get("/audit/export.csv?user=emi")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="koe-audit-' in response["Content-Disposition"]
    text = await body(response)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert len(rows) == len(leave_talk()) and {r["conversation"] for r in rows} == {
        str(leave.public_id)
    }
    assert [int(r["sequence"]) for r in rows] == list(range(1, len(rows) + 1))
    assert json.loads(rows[0]["data"])["text"] == "How many days of paid leave do I get?"
    assert all(len(r["chain_hash"]) == 64 for r in rows)

    lines = await body(await aiko.get("/audit/export.jsonl?text=他の人"))
    records = [json.loads(line) for line in lines.splitlines()]
    assert [r["data"]["text"] for r in records] == ["他の人"] and records[0]["user"] == "taro"
    logged = await sync_to_async(
        lambda: list(AccessLogEntry.objects.order_by("pk").values_list("event_type", "data"))
    )()
    assert logged == [
        ("export.csv", {"filter": {"username": "emi"}}),
        ("export.jsonl", {"filter": {"text": "他の人"}}),
    ]


async def test_spreadsheet_formulas_in_cells_are_made_inert(person, talk):
    attacker = await sync_to_async(person)("=HYPERLINK(evil)", Role.EMPLOYEE)
    await sync_to_async(talk)(attacker, leave_talk(), model="+cmd|calc", provider="@x")
    aiko = await client_of(await sync_to_async(person)("aiko", Role.AUDITOR))
    rows = list(csv.DictReader(io.StringIO((await body(await aiko.get("/audit/export.csv")))[1:])))
    assert {r["user"] for r in rows} == {"'=HYPERLINK(evil)"}
    assert {(r["provider"], r["model"]) for r in rows} == {("'@x", "'+cmd|calc")}
