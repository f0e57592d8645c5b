"""A meeting's decisions and action items, written by the Realtime model in text mode.

One short Realtime session (`output_modalities: ["text"]`, no audio, no tools): the transcript
goes in as one user message, the model answers with JSON. The instructions are the server's;
the answer is checked before it is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from minutes.selectors import Line
from voice.realtime.session import Upstream

logger = logging.getLogger(__name__)

SUMMARY_INSTRUCTIONS = (
    "You write the summary of a meeting from its transcript. Reply with one JSON object and "
    'nothing else: {"decisions": [...], "actions": [...]}. "decisions" lists what the meeting '
    'decided; "actions" lists who will do what, and by when if it was said. Each entry is one '
    "short sentence in the language of the transcript. Use only what the transcript says; "
    "when there is nothing of a kind, give an empty list."
)
MAX_TRANSCRIPT_CHARS = 60_000  # about 15k tokens: the meeting's last words if longer
MAX_ITEMS = 20


class SummaryFailed(Exception):
    """The model gave no usable summary (it said so, or answered something else)."""


def transcript_text(lines: Sequence[Line]) -> str:
    text = "\n".join(f"{line.speaker or '?'}: {line.text}" for line in lines)
    return text[-MAX_TRANSCRIPT_CHARS:]


def summary_events(lines: Sequence[Line]) -> list[dict[str, Any]]:
    """What Koe sends after session.created: the settings, the transcript, the request."""
    return [
        {
            "type": "session.update",
            "session": {
                "type": "realtime",
                "output_modalities": ["text"],
                "instructions": SUMMARY_INSTRUCTIONS,
                "tools": [],
                "max_output_tokens": 2000,
            },
        },
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": transcript_text(lines)}],
            },
        },
        {"type": "response.create"},
    ]


def summary_parse(text: str) -> tuple[list[str], list[str]]:
    """The model's JSON answer as (decisions, actions), or SummaryFailed."""
    start, end = text.find("{"), text.rfind("}")
    try:
        data = json.loads(text[start : end + 1]) if start >= 0 else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise SummaryFailed("the model did not answer with a summary")

    def items(key: str) -> list[str]:
        value = data.get(key) or []
        if not isinstance(value, list):
            raise SummaryFailed(f"the model's {key} are not a list")
        return [str(v).strip() for v in value if str(v).strip()][:MAX_ITEMS]

    return items("decisions"), items("actions")


async def model_summary(
    *, connect: Callable[[], Awaitable[Upstream]], lines: Sequence[Line], timeout_s: float = 90
) -> tuple[list[str], list[str]]:
    """Ask the model for the summary of these lines."""
    try:
        upstream = await connect()
    except Exception as exc:
        logger.warning("summary: the model could not be reached: %r", exc)
        raise SummaryFailed("the model could not be reached") from None
    try:
        return await asyncio.wait_for(_converse(upstream, lines), timeout=timeout_s)
    except TimeoutError:
        raise SummaryFailed("the model took too long") from None
    except SummaryFailed:
        raise
    except Exception as exc:
        logger.warning("summary: the model's session failed: %r", exc)
        raise SummaryFailed("the model's session failed") from None
    finally:
        with contextlib.suppress(Exception):
            await upstream.close()


async def _converse(upstream: Upstream, lines: Sequence[Line]) -> tuple[list[str], list[str]]:
    first = json.loads(await upstream.recv())
    if first.get("type") != "session.created":
        raise SummaryFailed(f"unexpected first event {first.get('type')!r}")
    for event in summary_events(lines):
        await upstream.send(json.dumps(event))
    text: list[str] = []
    while True:
        event = json.loads(await upstream.recv())
        kind = event.get("type")
        if kind == "response.output_text.delta":
            text.append(str(event.get("delta") or ""))
        elif kind == "response.output_text.done":
            text = [str(event.get("text") or "".join(text))]
        elif kind == "error":
            logger.warning("summary refused by the model: %s", event.get("error"))
            raise SummaryFailed("the model refused the request")
        elif kind == "response.done":
            status = (event.get("response") or {}).get("status")
            if status not in (None, "completed"):
                raise SummaryFailed(f"the model's answer ended as {status}")
            return summary_parse("".join(text))
