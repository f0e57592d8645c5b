"""The engine's answers: sentences from the passages, with their source, or "I don't know"."""

import json

import pytest

from voice.engine.answer import (
    DONT_KNOW,
    Source,
    answer_from_sources,
    sources_from_tool_output,
    split_sentences,
)

LEAVE = Source(
    "Leave and Holidays",
    "Full-time employees receive twenty days of annual paid leave each year. "
    "Unused days carry over for one year and then expire.",
)
TRAVEL = Source(
    "Travel Policy", "The nightly hotel limit is 15,000 yen in Tokyo. Flights are economy."
)


@pytest.fixture(scope="module")
def e5():
    from knowledge.embeddings import LocalE5Embedder

    return LocalE5Embedder()


def test_the_best_sentences_answer_and_the_source_is_named(e5):
    answer = answer_from_sources(
        question="What is the hotel limit in Tokyo?", sources=[LEAVE, TRAVEL], embedder=e5
    )
    assert answer.startswith("According to Travel Policy: The nightly hotel limit is 15,000 yen")
    assert "paid leave" not in answer


def test_a_japanese_question_finds_the_sentence_too(e5):
    answer = answer_from_sources(
        question="有給休暇は何日ですか", sources=[TRAVEL, LEAVE], embedder=e5
    )
    assert "twenty days of annual paid leave" in answer


def test_nothing_relevant_or_nothing_at_all_is_i_dont_know(e5):
    assert (
        answer_from_sources(question="What is the capital of France?", sources=[LEAVE], embedder=e5)
        == DONT_KNOW
    )
    assert answer_from_sources(question="Anything?", sources=[], embedder=e5) == DONT_KNOW


def test_tool_outputs_in_koes_shape_plain_text_or_empty():
    koe = json.dumps({"passages": [{"source": "Leave", "where": "p. 2", "text": "Twenty days."}]})
    assert sources_from_tool_output(koe) == [Source("Leave", "Twenty days.")]
    assert sources_from_tool_output("Twenty days of leave.") == [
        Source("", "Twenty days of leave.")
    ]
    assert sources_from_tool_output(json.dumps({"passages": []})) == []
    assert sources_from_tool_output("") == []


def test_sentences_split_in_english_and_japanese():
    assert split_sentences("One. Two!\nThree") == ["One.", "Two!", "Three"]
    assert split_sentences("有給休暇は二十日です。申請は上長に行います。") == [
        "有給休暇は二十日です。",
        "申請は上長に行います。",
    ]
