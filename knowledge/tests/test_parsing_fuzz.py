"""Mutated uploads: every parser either reads the file or refuses it with a DocumentError,
never anything else (no crash, no hang, no other exception reaching the worker).

The example count is bounded for CI; KOE_FUZZ_EXAMPLES raises it for a longer run.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowledge.parsing import DocumentError, document_parse
from knowledge.tests.samples import docx_bytes, pdf_bytes

EXAMPLES = int(os.environ.get("KOE_FUZZ_EXAMPLES", "100"))
MAX_BYTES = 5_000_000
TRIED: dict[str, int] = {}

SEEDS = {
    "policy.pdf": pdf_bytes(["Annual leave is twenty days.", "Sick leave needs a note."], "Leave"),
    "policy.docx": docx_bytes([("Heading 1", "Leave"), ("", "Twenty days a year.")]),
    "policy.md": "# Leave\n\nTwenty days a year.\n\n## 病気休暇\n\n診断書が必要です。\n".encode(),
    "policy.html": b"<html><body><h1>Leave</h1><p>Twenty days.</p><script>x()</script></body>",
    "policy.txt": "休暇規程\n\n年次有給休暇は二十日です。".encode("shift_jis"),
}


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed with random bytes flipped, cut, duplicated or spliced in."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif action == "repeat":
            data[at:at] = bytes(data[at : at + 32]) * draw(st.integers(2, 50))
        else:
            del data[at:]
    return bytes(data)


@pytest.mark.parametrize("filename", sorted(SEEDS))
def test_a_mutated_file_is_read_or_refused_cleanly(filename):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=mutated(SEEDS[filename]))
    def parse(data: bytes) -> None:
        TRIED[filename] = TRIED.get(filename, 0) + 1
        try:
            parsed = document_parse(filename=filename, data=data, max_bytes=MAX_BYTES)
        except DocumentError as refused:
            assert str(refused)  # a message a knowledge admin can read
            return
        assert isinstance(parsed.title, str) and all(
            isinstance(s.text, str) for s in parsed.sections
        )

    parse()
    print(f"{filename}: {TRIED[filename]} mutated files tried")
    assert TRIED[filename] >= min(EXAMPLES, 10)
