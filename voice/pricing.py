"""What a response cost: its tokens (from response.done's usage) times a price table, in
Decimal US dollars.

The default table is the providers' list prices per million tokens, each with where and when
it was read; KOE_PRICES (JSON, same shape) adds or replaces entries, e.g. for an enterprise
agreement or an Azure deployment name. A model is priced by the longest table key its name
starts with (`gpt-realtime-mini-2025-10-06` is `gpt-realtime-mini`); Koe's own engine costs
nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from django.utils.translation import gettext_lazy

MILLION = Decimal(1_000_000)
SOURCE_READ = "2026-12-02"


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    text_input: Decimal
    text_cached: Decimal
    text_output: Decimal
    audio_input: Decimal
    audio_cached: Decimal
    audio_output: Decimal
    source: str
    as_of: str


def _price(text: tuple[str, str, str], audio: tuple[str, str, str], source: str) -> Price:
    return Price(
        text_input=Decimal(text[0]),
        text_cached=Decimal(text[1]),
        text_output=Decimal(text[2]),
        audio_input=Decimal(audio[0]),
        audio_cached=Decimal(audio[1]),
        audio_output=Decimal(audio[2]),
        source=source,
        as_of=SOURCE_READ,
    )


def _openai(model: str) -> str:
    return f"https://developers.openai.com/api/docs/models/{model}"


DEFAULT_PRICES: dict[str, Price] = {
    # Text (input, cached input, output), then audio (input, cached input, output).
    "gpt-realtime": _price(("4", "0.40", "16"), ("32", "0.40", "64"), _openai("gpt-realtime")),
    "gpt-realtime-mini": _price(
        ("0.60", "0.06", "2.40"), ("10", "0.30", "20"), _openai("gpt-realtime-mini")
    ),
    "gpt-4o-realtime-preview": _price(
        ("5", "2.50", "20"), ("40", "2.50", "80"), _openai("gpt-4o-realtime-preview")
    ),
    "gpt-4o-mini-realtime-preview": _price(
        ("0.60", "0.30", "2.40"), ("10", "0.30", "20"), _openai("gpt-4o-mini-realtime-preview")
    ),
    # Translated when shown (lazy): the table is built once, at import.
    "koe-local": _price(
        ("0", "0", "0"), ("0", "0", "0"), cast(str, gettext_lazy("Koe's offline engine runs here"))
    ),
}


def price_table(overrides: str = "") -> dict[str, Price]:
    """The default prices with KOE_PRICES applied (a JSON object of model -> price fields)."""
    table = dict(DEFAULT_PRICES)
    if not overrides:
        return table
    raw: dict[str, dict[str, Any]] = json.loads(overrides)
    for model, fields in raw.items():
        table[model] = Price(
            text_input=Decimal(str(fields["text_input"])),
            text_cached=Decimal(str(fields["text_cached"])),
            text_output=Decimal(str(fields["text_output"])),
            audio_input=Decimal(str(fields["audio_input"])),
            audio_cached=Decimal(str(fields["audio_cached"])),
            audio_output=Decimal(str(fields["audio_output"])),
            source=str(fields.get("source", "KOE_PRICES")),
            as_of=str(fields.get("as_of", "")),
        )
    return table


def price_for(model: str, *, provider: str, table: dict[str, Price]) -> Price | None:
    """The price of a model (None when the table does not know it)."""
    if provider == "local":
        return table["koe-local"]
    matches = [key for key in table if model == key or model.startswith(key + "-")]
    return table[max(matches, key=len)] if matches else None


def usage_cost(usage: dict[str, Any], price: Price) -> Decimal:
    """The cost of one response's usage (Koe's flattened usage record), to the micro-dollar.

    Cached input tokens are part of the input counts and billed at the cached rate; where the
    split of cached tokens between text and audio is unknown, they count as text first (the
    instructions and tools, cached first in a session), then as audio.
    """

    def n(key: str) -> Decimal:
        value = usage.get(key) or 0
        return Decimal(int(value))

    cached_text = n("input_cached_text_tokens")
    cached_audio = n("input_cached_audio_tokens")
    if not (cached_text or cached_audio):
        # No split given: the cached tokens are text first, the rest audio (never more of
        # either than there was, so no token is billed twice).
        cached = n("input_cached_tokens")
        cached_text = min(cached, n("input_text_tokens"))
        cached_audio = min(cached - cached_text, n("input_audio_tokens"))
    text_in = max(Decimal(0), n("input_text_tokens") - cached_text)
    audio_in = max(Decimal(0), n("input_audio_tokens") - cached_audio)
    total = (
        text_in * price.text_input
        + cached_text * price.text_cached
        + audio_in * price.audio_input
        + cached_audio * price.audio_cached
        + n("output_text_tokens") * price.text_output
        + n("output_audio_tokens") * price.audio_output
    ) / MILLION
    return total.quantize(Decimal("0.000001"))
