"""Sections into passages for retrieval: by headings, paragraphs and sentences, with overlap.

Japanese has no spaces, so sentences end at 。！？ as well as at . ! ?, and sizes are counted in
characters, not words. A passage never crosses a heading: its heading path travels with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from knowledge.parsing import Section

# Sentence ends: Western punctuation followed by space, or CJK punctuation (no space follows).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")
_PARAGRAPH = re.compile(r"\n\s*\n|\n(?=[-*•・●]\s)")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")


@dataclass(frozen=True)
class ChunkDraft:
    order: int
    text: str
    heading_path: tuple[str, ...]
    page: int | None
    token_count: int


def token_estimate(text: str) -> int:
    """Roughly what an embedding tokenizer counts: one per CJK character, 1.3 per word."""
    cjk = len(_CJK.findall(text))
    words = len(_CJK.sub(" ", text).split())
    return cjk + round(words * 1.3)


def _sentences(text: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        paragraph = " ".join(paragraph.split()) if not _CJK.search(paragraph) else paragraph.strip()
        if not paragraph:
            continue
        for sentence in _SENTENCE_END.split(paragraph):
            sentence = sentence.strip()
            # A sentence longer than a passage is cut, not dropped.
            while len(sentence) > max_chars:
                pieces.append(sentence[:max_chars])
                sentence = sentence[max_chars:]
            if sentence:
                pieces.append(sentence)
        pieces.append("")  # paragraph boundary
    return pieces


def chunks_from_sections(
    sections: Iterable[Section], *, max_chars: int = 800, overlap_chars: int = 150
) -> list[ChunkDraft]:
    """Passages of at most max_chars, each starting with up to overlap_chars of the one before."""
    drafts: list[ChunkDraft] = []
    for section in sections:
        for text in _section_texts(section.text, max_chars, overlap_chars):
            drafts.append(
                ChunkDraft(
                    order=len(drafts),
                    text=text,
                    heading_path=section.heading_path,
                    page=section.page,
                    token_count=token_estimate(text),
                )
            )
    return drafts


def _section_texts(text: str, max_chars: int, overlap_chars: int) -> list[str]:
    texts: list[str] = []
    current: list[str] = []
    size = 0
    for sentence in _sentences(text, max_chars):
        if not sentence:
            current.append("")
            continue
        if size + len(sentence) > max_chars and size:
            texts.append(_join(current))
            # Carry the last sentences over, so an answer spanning the cut is found whole.
            carried: list[str] = []
            carried_size = 0
            for previous in reversed([p for p in current if p]):
                if carried_size + len(previous) > overlap_chars:
                    break
                carried.insert(0, previous)
                carried_size += len(previous)
            current, size = carried, carried_size
        current.append(sentence)
        size += len(sentence)
    if size:
        texts.append(_join(current))
    return [t for t in texts if t]


def _join(parts: list[str]) -> str:
    paragraphs: list[str] = []
    sentences: list[str] = []
    for part in [*parts, ""]:
        if part:
            sentences.append(part)
        elif sentences:
            joiner = "" if _CJK.search(sentences[0]) else " "
            paragraphs.append(joiner.join(sentences))
            sentences = []
    return "\n\n".join(paragraphs).strip()
