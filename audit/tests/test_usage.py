"""The usage and cost dashboard: sums per day, user and model, priced in Decimal."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.roles import Role
from audit.models import AccessLogEntry

pytestmark = pytest.mark.django_db


def usage(
    item: str, text_in: int, audio_in: int, text_out: int, audio_out: int
) -> tuple[str, dict]:
    return (
        "usage",
        {
            "item_id": item,
            "input_tokens": text_in + audio_in,
            "output_tokens": text_out + audio_out,
            "input_text_tokens": text_in,
            "input_audio_tokens": audio_in,
            "input_cached_tokens": 0,
            "output_text_tokens": text_out,
            "output_audio_tokens": audio_out,
        },
    )


@pytest.fixture
def month(person, talk):
    emi, taro = person("emi", Role.EMPLOYEE), person("taro", Role.EMPLOYEE)
    # gpt-realtime: 1,000 text in x $4 + 1,000 audio in x $32 + 1,000 audio out x $64 = $0.100
    talk(emi, [usage("k_1", 1000, 1000, 0, 1000)])
    talk(emi, [usage("k_1", 1000, 1000, 0, 1000)])
    # gpt-realtime-mini: 10,000 audio out x $20 = $0.200
    taro_talk = talk(taro, [usage("k_1", 0, 0, 0, 10_000)], model="gpt-realtime-mini")
    # A deployment name no price knows: counted in tokens, not in money.
    talk(taro, [usage("k_1", 500, 0, 0, 0)], model="contoso-voice")
    return emi, taro, taro_talk


def test_the_dashboard_sums_prices_and_draws(person, client_of, month):
    aiko = client_of(person("aiko", Role.AUDITOR))
    today = timezone.localdate().isoformat()
    page = aiko.get(f"/audit/usage/?since={today}&until={today}")
    assert page.status_code == 200
    html = page.content.decode()
    assert '<span class="figure">$0.40</span>' in html  # 0.100 + 0.100 + 0.200
    assert "4 conversations" not in html and "3</span> conversations" in html  # priced ones
    assert "500 tokens are of models without a price" in html
    assert html.count('<svg class="chart"') == 3 and 'aria-label="Cost per day"' in html
    assert "taro" in html and "emi" in html
    assert "https://developers.openai.com/api/docs/models/gpt-realtime" in html
    entry = AccessLogEntry.objects.get()
    assert entry.event_type == "usage.view" and entry.data["filter"] == {
        "since": today,
        "until": today,
    }


def test_only_auditors_see_usage(person, client_of):
    assert client_of(person("emi", Role.EMPLOYEE)).get("/audit/usage/").status_code == 403


def test_the_report_arithmetic_is_decimal_and_per_model():
    from datetime import date

    from voice.pricing import DEFAULT_PRICES
    from voice.usage import usage_report

    day = date(2026, 12, 1)
    groups = [
        {
            "day": day,
            "username": "emi",
            "provider": "openai",
            "model": "gpt-realtime",
            "input_text_tokens": 1000,
            "input_tokens": 1000,
            "output_tokens": 0,
        },
        {
            "day": day,
            "username": "emi",
            "provider": "local",
            "model": "koe-local",
            "input_text_tokens": 10**9,
            "input_tokens": 10**9,
            "output_tokens": 0,
        },
    ]
    report = usage_report(groups=groups, conversations=[], table=DEFAULT_PRICES)
    assert report.total.cost == Decimal("0.004")  # the offline engine costs nothing
    assert report.users["emi"].total_tokens == 1000 + 10**9
    assert report.days[day].cost == Decimal("0.004")
