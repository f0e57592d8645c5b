import itertools

from knowledge.chunking import chunks_from_sections, token_estimate
from knowledge.parsing import Section


def test_short_sections_are_one_chunk_each_with_their_heading_and_page():
    drafts = chunks_from_sections(
        [Section("Twenty days.", ("Handbook", "Leave"), 3), Section("By train.", ("Travel",))]
    )
    assert [(d.order, d.text, d.heading_path, d.page) for d in drafts] == [
        (0, "Twenty days.", ("Handbook", "Leave"), 3),
        (1, "By train.", ("Travel",), None),
    ]


def test_long_english_text_is_cut_at_sentences_with_overlap():
    sentences = [f"Sentence number {i} says something about leave." for i in range(40)]
    drafts = chunks_from_sections([Section(" ".join(sentences))], max_chars=300, overlap_chars=100)
    assert len(drafts) > 3
    assert all(len(d.text) <= 300 + 1 for d in drafts)
    for before, after in itertools.pairwise(drafts):
        # Each chunk starts with the end of the one before it.
        last_sentence = before.text.split(". ")[-1]
        assert last_sentence.rstrip(".") in after.text
    joined = " ".join(d.text for d in drafts)
    assert all(s in joined for s in sentences)  # nothing lost


def test_japanese_without_spaces_is_cut_at_sentence_ends():
    text = "".join(f"第{i}条の規定により、有給休暇は申請が必要です。" for i in range(60))
    drafts = chunks_from_sections([Section(text)], max_chars=200, overlap_chars=60)
    assert len(drafts) > 5
    assert all(len(d.text) <= 200 for d in drafts)
    assert all(d.text.endswith("。") for d in drafts)
    assert "第0条" in drafts[0].text and "第59条" in drafts[-1].text


def test_a_sentence_longer_than_a_chunk_is_split_not_lost():
    drafts = chunks_from_sections([Section("あ" * 1000)], max_chars=300, overlap_chars=0)
    assert "".join(d.text for d in drafts) == "あ" * 1000


def test_paragraphs_stay_apart_inside_a_chunk():
    drafts = chunks_from_sections([Section("First paragraph.\n\nSecond paragraph.")])
    assert drafts[0].text == "First paragraph.\n\nSecond paragraph."


def test_token_estimate_counts_japanese_by_character():
    assert token_estimate("有給休暇") == 4
    assert token_estimate("paid leave days") == 4
