"""The filtered audit records as CSV or JSON Lines, produced line by line for streaming."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from voice.selectors import EXPORT_FIELDS


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "conversation": str(record["conversation"]), "at": record["at"].isoformat()}


# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: Any) -> Any:
    """The cell as text a spreadsheet shows rather than runs."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def jsonl_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """One JSON object per record and line (UTF-8, Japanese kept as it is)."""
    for record in records:
        yield json.dumps(_plain(record), ensure_ascii=False) + "\n"


def csv_lines(records: Iterable[dict[str, Any]]) -> Iterator[str]:
    """A header, then one row per record; `data` is the record's JSON. The byte-order mark
    lets Excel open Japanese text as UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    yield "\ufeff"
    writer.writerow(EXPORT_FIELDS)
    for record in records:
        plain = _plain(record)
        plain["data"] = json.dumps(plain["data"], ensure_ascii=False)
        writer.writerow([_inert(plain[name]) for name in EXPORT_FIELDS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    tail = buffer.getvalue()
    if tail:
        yield tail
