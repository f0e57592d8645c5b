"""Decisions and action items of a meeting, picked from its transcript without a model.

The offline engine has no language model, so it does not write a summary: it picks the
sentences that say something was decided or that someone will do something, by their cue
words in English and Japanese. What it returns is the speakers' own words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from minutes.selectors import Line

MAX_ITEMS = 10

_SENTENCE = re.compile(r"[^.!?。！？]+[.!?。！？]?")
_DECISION = re.compile(
    r"\b(decided|decide to|agreed|agree to|approved|we will go with|settled on|final decision)\b"
    r"|決定|決まり|決めました|合意|承認|採用します|ことにします|ことにしました",
    re.IGNORECASE,
)
_ACTION = re.compile(
    r"\b(will|i'll|we'll|you'll|action item|to do|todo|follow up|by (monday|tuesday|wednesday|"
    r"thursday|friday|next week|tomorrow|the end of))\b"
    r"|担当|までに|お願いします|対応します|確認します|やります|宿題|タスク",
    re.IGNORECASE,
)


def _sentences(line: Line) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(line.text) if len(s.strip()) > 3]


def extractive_summary(lines: Sequence[Line]) -> tuple[list[str], list[str]]:
    """(decisions, action items): transcript sentences with their speaker, in meeting order."""
    decisions: list[str] = []
    actions: list[str] = []
    for line in lines:
        for sentence in _sentences(line):
            said = f"{line.speaker}: {sentence}" if line.speaker else sentence
            if _DECISION.search(sentence):
                if len(decisions) < MAX_ITEMS:
                    decisions.append(said)
            elif _ACTION.search(sentence) and len(actions) < MAX_ITEMS:
                actions.append(said)
    return decisions, actions
