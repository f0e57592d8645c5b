"""What the offline engine says: the sentences of the returned passages that best answer the
question, naming their source; or that it does not know.

No language model: the engine picks sentences, so every word it says comes from a document.
Relevance is multilingual-e5-small's cosine between the question and each sentence.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# Sentence ends in English and Japanese; a passage's line breaks end sentences too.
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])|\n+")
MAX_SENTENCES = 2
# e5 scores crowd together (0.7 to 0.9): under this a sentence is about something else.
MIN_RELEVANCE = 0.78
DONT_KNOW = "I'm sorry, I could not find that in the company documents, so I don't know."


class SentenceEmbedder(Protocol):
    def passages(self, texts: Sequence[str]) -> list[list[float]]: ...

    def query(self, text: str) -> list[float]: ...


@dataclass(frozen=True)
class Source:
    title: str
    text: str


def sources_from_tool_output(output: str) -> list[Source]:
    """The passages in a function_call_output: Koe's {"passages": [...]} or plain text."""
    try:
        parsed = json.loads(output)
    except ValueError:
        return [Source(title="", text=output)] if output.strip() else []
    if isinstance(parsed, dict) and isinstance(parsed.get("passages"), list):
        return [
            Source(title=str(p.get("source") or ""), text=str(p.get("text") or ""))
            for p in parsed["passages"]
            if isinstance(p, dict) and p.get("text")
        ]
    return [Source(title="", text=output)] if output.strip() else []


def answer_from_sources(
    *, question: str, sources: Sequence[Source], embedder: SentenceEmbedder
) -> str:
    """The best one or two sentences for the question, with their source named."""
    candidates = [
        (source.title, sentence)
        for source in sources
        for sentence in split_sentences(source.text)
        if len(sentence) >= 6
    ]
    if not candidates:
        return DONT_KNOW
    query = embedder.query(question)
    vectors = embedder.passages([sentence for _, sentence in candidates])
    scored = sorted(
        (
            (_cosine(query, vector), title, sentence)
            for (title, sentence), vector in zip(candidates, vectors, strict=True)
        ),
        reverse=True,
    )
    best = [item for item in scored[:MAX_SENTENCES] if item[0] >= MIN_RELEVANCE]
    if not best:
        return DONT_KNOW
    title = best[0][1]
    said = " ".join(_as_sentence(sentence) for _, source, sentence in best if source == title)
    return f"According to {title}: {said}" if title else said


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _as_sentence(text: str) -> str:
    return text if text[-1] in ".!?。！？" else f"{text}."


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
