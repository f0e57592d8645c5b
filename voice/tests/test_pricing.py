"""Cost arithmetic: Decimal throughout, cached tokens at the cached rate, prices by model."""

from decimal import Decimal

import pytest

from voice.pricing import DEFAULT_PRICES, price_for, price_table, usage_cost


def test_a_response_costs_its_tokens_at_the_list_prices_in_decimal():
    price = DEFAULT_PRICES["gpt-realtime"]
    usage = {
        "input_text_tokens": 313,
        "input_audio_tokens": 476,
        "input_cached_tokens": 640,
        "input_cached_text_tokens": 256,
        "input_cached_audio_tokens": 384,
        "output_text_tokens": 9,
        "output_audio_tokens": 23,
    }
    cost = usage_cost(usage, price)
    expected = (
        Decimal(57) * 4
        + Decimal(256) * Decimal("0.40")
        + Decimal(92) * 32
        + Decimal(384) * Decimal("0.40")
        + Decimal(9) * 16
        + Decimal(23) * 64
    ) / Decimal(1_000_000)
    assert cost == expected.quantize(Decimal("0.000001")) == Decimal("0.005044")
    assert isinstance(cost, Decimal)


def test_a_million_responses_add_up_exactly():
    price = DEFAULT_PRICES["gpt-realtime-mini"]
    one = usage_cost({"input_text_tokens": 1, "output_audio_tokens": 1}, price)
    assert one == Decimal("0.000021")  # 0.60 + 20 dollars per million: no float drift
    assert sum([one] * 1_000_000, Decimal(0)) == Decimal("21.000000")


def test_cached_tokens_without_a_split_count_as_text():
    price = DEFAULT_PRICES["gpt-4o-realtime-preview"]
    cost = usage_cost({"input_text_tokens": 1000, "input_cached_tokens": 1000}, price)
    assert cost == Decimal("0.002500")  # all 1,000 at the cached 2.50 a million


@pytest.mark.parametrize(
    ("model", "provider", "key"),
    [
        ("gpt-realtime", "openai", "gpt-realtime"),
        ("gpt-realtime-2025-08-28", "azure", "gpt-realtime"),
        ("gpt-realtime-mini-2025-10-06", "openai", "gpt-realtime-mini"),
        (
            "gpt-4o-mini-realtime-preview-2024-12-17",
            "azure_preview",
            "gpt-4o-mini-realtime-preview",
        ),
        ("anything", "local", "koe-local"),
    ],
)
def test_models_are_priced_by_their_longest_known_name(model, provider, key):
    assert price_for(model, provider=provider, table=DEFAULT_PRICES) is DEFAULT_PRICES[key]


def test_unknown_models_are_unpriced_and_koe_prices_adds_them():
    assert price_for("contoso-voice", provider="azure", table=DEFAULT_PRICES) is None
    table = price_table(
        '{"contoso-voice": {"text_input": 3, "text_cached": 0.3, "text_output": 12,'
        ' "audio_input": 30, "audio_cached": 0.3, "audio_output": 60,'
        ' "source": "our Azure agreement", "as_of": "2026-10-01"}}'
    )
    price = price_for("contoso-voice", provider="azure", table=table)
    assert price is not None and price.audio_output == Decimal(60)
    assert price.source == "our Azure agreement"
    assert all(p.source and p.as_of for p in DEFAULT_PRICES.values())
