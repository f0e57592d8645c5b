"""The auditor's conversation list and export on 100,000 conversations (a million records).

Run: .venv/bin/python bench/audit_list.py [--conversations 100000] [--runs 5]

Works in its own database (koe_bench_audit) on the embedded PostgreSQL, which it fills with
synthetic conversations of 200 employees over 90 days: each has 10 records (4 transcripts in
English or Japanese, a tool call, citations, 2 usage records, a latency and the end), 2% end
by an error, 3% had a session expiry. Each row of the table is the whole page as an auditor
gets it through Django's test client (the access-log write included), p50 and p95 of --runs,
and the ratio to the unfiltered first page of the same run. The export row streams the CSV of
one user's conversations and counts its records.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.own_database import django_in_own_database

django_in_own_database("koe_bench_audit")

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client

from accounts.roles import Role
from accounts.services import user_roles_set

FILL = """
INSERT INTO voice_conversation
    (public_id, user_id, provider, model, started_at, ended_at, end_reason, chain_head)
SELECT gen_random_uuid(), %(first_user)s + (n %% 200),
       CASE WHEN n %% 10 = 0 THEN 'local' ELSE 'azure' END,
       CASE WHEN n %% 10 = 0 THEN 'koe-local'
            WHEN n %% 3 = 0 THEN 'gpt-realtime-mini' ELSE 'gpt-realtime' END,
       t, t + interval '3 minutes',
       CASE WHEN n %% 50 = 0 THEN 'upstream_unavailable' ELSE 'client_closed' END, ''
FROM generate_series(1, %(count)s) AS n,
     LATERAL (SELECT now() - (n %% 90) * interval '1 day' - (n %% 1440) * interval '1 minute')
         AS start(t);

INSERT INTO voice_conversationevent
    (conversation_id, actor_id, subject, event_type, at, data, sequence, chain_hash)
SELECT c.id, c.user_id, e.subject, e.kind, c.started_at + e.seq * interval '5 seconds',
       e.data, e.seq, repeat('0', 64)
FROM voice_conversation c
CROSS JOIN LATERAL (VALUES
  (1, 'k_1', 'transcript', jsonb_build_object('item_id', 'k_1', 'role', 'user', 'text',
      CASE WHEN c.id %% 4 = 0 THEN '出張の日当はいくらですか ' || c.id
           ELSE 'How many days of paid leave do I get, case ' || c.id END)),
  (2, '', 'tool_call', jsonb_build_object('name', 'search_knowledge',
      'arguments', '{"query": "leave"}',
      'document_ids', jsonb_build_array(%(doc)s || lpad((c.id %% 50)::text, 12, '0')))),
  (3, '', 'usage', jsonb_build_object('input_tokens', 300, 'output_tokens', 20,
      'input_text_tokens', 300, 'output_text_tokens', 20)),
  (4, 'k_2', 'citations', jsonb_build_object('item_id', 'k_2',
      'document_ids', jsonb_build_array(%(doc)s || lpad((c.id %% 50)::text, 12, '0')))),
  (5, 'k_2', 'latency', jsonb_build_object('item_id', 'k_2', 'ms', 600 + c.id %% 400)),
  (6, 'k_2', 'transcript', jsonb_build_object('item_id', 'k_2', 'role', 'assistant',
      'text', 'According to the policy: twenty days a year.')),
  (7, 'k_2', 'usage', jsonb_build_object('item_id', 'k_2', 'input_tokens', 400,
      'output_tokens', 200, 'input_text_tokens', 350, 'input_audio_tokens', 50,
      'output_audio_tokens', 200)),
  (8, 'k_3', 'transcript', jsonb_build_object('item_id', 'k_3', 'role', 'user',
      'text', 'Thank you')),
  (9, '', CASE WHEN c.id %% 33 = 0 THEN 'rollover' ELSE 'note' END,
      jsonb_build_object('reason', 'session_expired')),
  (10, '', 'ended', jsonb_build_object('reason', c.end_reason))
) AS e(seq, subject, kind, data);
"""

# The cited documents' public ids: 50 of them, ...000000000000 to ...000000000049.
DOCUMENT_PREFIX = "00000000-0000-4000-8000-"

CASES = [
    ("all, first page", ""),
    ("all, page 500", "page=500"),
    ("one user", "user=emp42"),
    ("one week", "since={week_ago}&until={today}"),
    ("words (English)", "text=case+4242"),
    ("words (Japanese)", "text=日当"),
    ("tool used", "tool=search_knowledge"),
    ("document cited", f"document={DOCUMENT_PREFIX}000000000007"),
    ("model", "model=gpt-realtime-mini"),
    ("ended by an error", "ended=error"),
    ("session expired", "ended=expiry"),
]


def fill(count: int) -> tuple[object, Client]:
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE voice_conversationevent, voice_conversation, audit_accesslogentry CASCADE"
        )
    people = get_user_model().objects
    employees = []
    for n in range(200):
        user, _ = people.get_or_create(username=f"emp{n}")
        employees.append(user)
    auditor, _ = people.get_or_create(username="bench-auditor")
    user_roles_set(user=auditor, roles=[Role.AUDITOR])
    started = time.perf_counter()
    with connection.cursor() as cursor:
        first_user = min(u.pk for u in employees)
        cursor.execute(FILL, {"first_user": first_user, "count": count, "doc": DOCUMENT_PREFIX})
        cursor.execute("ANALYZE voice_conversation; ANALYZE voice_conversationevent")
    seconds = time.perf_counter() - started
    print(f"filled {count:,} conversations ({count * 10:,} records) in {seconds:.0f} s")
    client = Client(HTTP_HOST="127.0.0.1")  # a host the settings allow
    client.force_login(auditor)
    return auditor, client


def _body(response: Any) -> bytes:
    if not response.streaming:
        return bytes(response.content)
    content = response.streaming_content
    if hasattr(content, "__aiter__"):  # the export streams as Koe serves it under ASGI

        async def collect() -> bytes:
            return b"".join([chunk async for chunk in content])

        return asyncio.run(collect())
    return b"".join(content)


def timed(client: Client, url: str, runs: int) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        body = _body(response)
        assert response.status_code == 200, (url, response.status_code)
        assert body
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, round(0.95 * len(times)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    _auditor, client = fill(args.conversations)
    from django.utils import timezone

    today = timezone.localdate()
    values = {"today": today.isoformat(), "week_ago": (today - timedelta(days=6)).isoformat()}
    print(f"\nauditor pages on {args.conversations:,} conversations (p50/p95 of {args.runs} runs)")
    print(f"{'case':<22}{'p50 ms':>10}{'p95 ms':>10}{'ratio':>8}")
    base = None
    for name, query in CASES:
        url = "/audit/?" + query.format(**values)
        p50, p95 = timed(client, url, args.runs)
        base = base or p50
        print(f"{name:<22}{p50:>10.1f}{p95:>10.1f}{p50 / base:>8.2f}")
    started = time.perf_counter()
    response = client.get("/audit/export.csv?user=emp42")
    records = _body(response).count(b"\n") - 1
    seconds = time.perf_counter() - started
    rate = records / seconds
    print(f"\nCSV export of one user: {records:,} records in {seconds:.2f} s ({rate:,.0f}/s)")


if __name__ == "__main__":
    main()
