"""Token use and cost over a period: per day, user and model, from the `usage` records.

Tokens are summed in the database; money is computed here in Decimal, one price per model.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from voice.pricing import Price, price_for, usage_cost

TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "input_text_tokens",
    "input_audio_tokens",
    "input_cached_tokens",
    "input_cached_text_tokens",
    "input_cached_audio_tokens",
    "output_text_tokens",
    "output_audio_tokens",
)


@dataclass
class Tally:
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TOKEN_FIELDS, 0))
    cost: Decimal = Decimal(0)
    unpriced_tokens: int = 0  # tokens of models without a price

    def add(self, tokens: dict[str, int], cost: Decimal | None) -> None:
        for name in TOKEN_FIELDS:
            self.tokens[name] += tokens.get(name, 0)
        if cost is None:
            self.unpriced_tokens += tokens.get("input_tokens", 0) + tokens.get("output_tokens", 0)
        else:
            self.cost += cost

    @property
    def total_tokens(self) -> int:
        return self.tokens["input_tokens"] + self.tokens["output_tokens"]


@dataclass
class UsageReport:
    days: dict[date, Tally]
    users: dict[str, Tally]
    models: dict[tuple[str, str], Tally]
    table: list[tuple[date, str, str, str, Tally]]  # day, user, provider, model
    conversation_costs: list[Decimal]
    total: Tally
    prices: dict[tuple[str, str], Price | None]


def usage_report(
    *,
    groups: Iterable[dict[str, Any]],
    conversations: Iterable[dict[str, Any]],
    table: dict[str, Price],
) -> UsageReport:
    """Fold grouped token sums (day, username, provider, model, fields...) and per-conversation
    sums (provider, model, fields...) into the report's tallies."""
    days: dict[date, Tally] = defaultdict(Tally)
    users: dict[str, Tally] = defaultdict(Tally)
    models: dict[tuple[str, str], Tally] = defaultdict(Tally)
    rows: list[tuple[date, str, str, str, Tally]] = []
    total = Tally()
    prices: dict[tuple[str, str], Price | None] = {}

    def cost_of(provider: str, model: str, tokens: dict[str, int]) -> Decimal | None:
        key = (provider, model)
        if key not in prices:
            prices[key] = price_for(model, provider=provider, table=table)
        price = prices[key]
        return usage_cost(tokens, price) if price is not None else None

    for group in groups:
        tokens = {name: int(group.get(name) or 0) for name in TOKEN_FIELDS}
        cost = cost_of(group["provider"], group["model"], tokens)
        row = Tally()
        row.add(tokens, cost)
        rows.append((group["day"], group["username"], group["provider"], group["model"], row))
        for tally in (
            days[group["day"]],
            users[group["username"]],
            models[(group["provider"], group["model"])],
            total,
        ):
            tally.add(tokens, cost)
    conversation_costs = []
    for conversation in conversations:
        tokens = {name: int(conversation.get(name) or 0) for name in TOKEN_FIELDS}
        cost = cost_of(conversation["provider"], conversation["model"], tokens)
        if cost is not None:
            conversation_costs.append(cost)
    return UsageReport(
        days=dict(sorted(days.items())),
        users=dict(sorted(users.items(), key=lambda kv: kv[1].cost, reverse=True)),
        models=dict(models),
        table=sorted(rows, key=lambda r: (r[0], r[1], r[3]), reverse=True),
        conversation_costs=conversation_costs,
        total=total,
        prices=prices,
    )
