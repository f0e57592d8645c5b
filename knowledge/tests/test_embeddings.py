import math

import openai
import pytest
from django.core.exceptions import ImproperlyConfigured

from knowledge.embeddings import (
    LOCAL_MODEL,
    EmbeddingError,
    OpenAIEmbedder,
    embedder_default,
    embedder_from_settings,
    embedding_dimensions,
)
from knowledge.tests.fake_embeddings import FakeEmbeddingsServer, fake_vector


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


# -- OpenAI and Azure OpenAI, against a fake endpoint on 127.0.0.1 ------------------------------


@pytest.fixture
def fake():
    with FakeEmbeddingsServer() as server:
        yield server


def openai_embedder(fake, *, model="text-embedding-3-small", dimensions=1536, **kwargs):
    client = openai.OpenAI(api_key="test-key", base_url=f"{fake.url}/v1", max_retries=0)
    send = kwargs.pop("send_dimensions", False)
    return OpenAIEmbedder(
        client=client, model=model, dimensions=dimensions, send_dimensions=send, **kwargs
    )


def test_openai_embeddings_are_batched_and_come_back_in_input_order(fake):
    texts = [f"passage number {i}" for i in range(150)]
    vectors = openai_embedder(fake).passages(texts)
    assert [len(r.body["input"]) for r in fake.requests] == [64, 64, 22]
    assert vectors[0] == fake_vector("passage number 0", 1536)
    assert vectors[149] == fake_vector("passage number 149", 1536)
    assert "dimensions" not in fake.requests[0].body


def test_shortened_vectors_ask_for_their_dimensions(fake):
    embedder = openai_embedder(
        fake, model="text-embedding-3-large", dimensions=256, send_dimensions=True
    )
    assert len(embedder.query("paid leave")) == 256
    assert fake.requests[0].body["dimensions"] == 256


def test_transient_failures_are_retried_then_succeed(fake):
    fake.failures[:] = [429, 500, 503]
    [vector] = openai_embedder(fake, max_wait_s=0.01).passages(["paid leave"])
    assert len(vector) == 1536 and len(fake.requests) == 4


def test_a_refusal_fails_at_once_with_a_clear_error(fake):
    fake.key = "another-key"
    with pytest.raises(EmbeddingError, match="refused Koe's credentials") as refused:
        openai_embedder(fake, max_wait_s=0.01).query("paid leave")
    assert len(fake.requests) == 1
    assert "test-key" not in str(refused.value)  # the service's own text quotes the key


def test_retries_give_up_after_the_last_attempt(fake):
    fake.failures[:] = [503] * 10
    with pytest.raises(EmbeddingError, match="busy or unreachable"):
        openai_embedder(fake, attempts=3, max_wait_s=0.01).passages(["paid leave"])
    assert len(fake.requests) == 3


def test_a_question_gets_two_quick_tries_only(fake):
    fake.failures[:] = [503] * 10
    with pytest.raises(EmbeddingError):
        openai_embedder(fake, attempts=6, max_wait_s=0.01).query("paid leave")
    assert len(fake.requests) == 2


def test_settings_build_an_azure_embedder_for_the_deployment(fake, settings):
    settings.KOE_EMBEDDING_PROVIDER = "azure"
    settings.AZURE_OPENAI_ENDPOINT = fake.url
    settings.AZURE_OPENAI_API_KEY = "test-key"
    settings.KOE_EMBEDDING_MODEL = "text-embedding-3-large"
    settings.KOE_EMBEDDING_DIMENSIONS = 1024
    settings.AZURE_OPENAI_EMBEDDING_DEPLOYMENT = "koe-embed"
    embedder = embedder_from_settings()
    assert (embedder.model, embedder.dimensions) == ("text-embedding-3-large", 1024)
    assert len(embedder.query("有給休暇")) == 1024
    request = fake.requests[0]
    assert request.path == "/openai/deployments/koe-embed/embeddings"
    assert request.query["api-version"] == [settings.AZURE_OPENAI_API_VERSION]
    assert request.headers["api-key"] == "test-key" and request.body["dimensions"] == 1024


def test_settings_build_an_openai_embedder(fake, settings):
    settings.KOE_EMBEDDING_PROVIDER = "openai"
    settings.OPENAI_BASE_URL = fake.url
    settings.OPENAI_API_KEY = "test-key"
    settings.KOE_EMBEDDING_MODEL = "text-embedding-3-small"
    settings.KOE_EMBEDDING_DIMENSIONS = 0
    embedder = embedder_from_settings()
    assert embedder.dimensions == 1536 and len(embedder.query("leave")) == 1536
    assert fake.requests[0].path == "/v1/embeddings"
    assert fake.requests[0].headers["authorization"] == "Bearer test-key"


@pytest.mark.parametrize(
    ("model", "dimensions", "message"),
    [
        ("my-own-model", 0, "KOE_EMBEDDING_DIMENSIONS must be set"),
        ("text-embedding-3-large", 5000, "at most 4000"),
    ],
)
def test_sizes_koe_cannot_index_are_refused_at_start(model, dimensions, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        embedding_dimensions(model, dimensions)
