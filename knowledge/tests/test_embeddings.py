import math

from knowledge.embeddings import LOCAL_MODEL, embedder_default


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_local_model_ranks_the_right_passage_first_in_english_and_japanese():
    embedder = embedder_default()
    assert embedder.model == LOCAL_MODEL and embedder.dimensions == 384
    passages = embedder.passages(
        [
            "Full-time employees receive twenty days of paid leave per year.",
            "The cafeteria on the third floor opens at noon.",
            "有給休暇は年間二十日です。",
            "社員食堂は三階で正午に開きます。",
        ]
    )
    assert all(len(p) == 384 for p in passages)
    english = embedder.query("How many days of paid leave do I get?")
    japanese = embedder.query("有給休暇は何日ありますか")
    assert cosine(english, passages[0]) > cosine(english, passages[1])
    assert cosine(japanese, passages[2]) > cosine(japanese, passages[3])
    # Cross-language: a Japanese question finds the English leave passage over the cafeteria.
    assert cosine(japanese, passages[0]) > cosine(japanese, passages[1])
