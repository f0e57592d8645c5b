"""Server-side tools: what the model may call, run by Koe with the signed-in user's rights."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Citation:
    """A passage an answer is based on, as the browser shows it (never the raw tool output)."""

    document_id: str
    title: str
    passage: str
    location: str = ""  # page or heading path
    url: str = ""
    document_version: int = 0  # kept in the audit record: the passage as it was then

    def as_browser(self) -> dict[str, str]:
        return {
            "title": self.title,
            "passage": self.passage,
            "location": self.location,
            "url": self.url,
        }


@dataclass(frozen=True)
class ToolOutcome:
    output: str  # what the model reads
    citations: tuple[Citation, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    arguments: str


# A tool takes the parsed arguments and answers for the model; it raises on failure.
ToolFunction = Callable[[dict[str, Any]], Awaitable[ToolOutcome]]


@dataclass
class ToolBox:
    """The tools of one session, already bound to its user."""

    functions: dict[str, ToolFunction] = field(default_factory=dict)
    timeout_s: float = 8.0

    async def run(self, call: ToolCall) -> ToolOutcome:
        """Run one call; every failure becomes an error text for the model, never an exception."""
        function = self.functions.get(call.name)
        if function is None:
            return _failed(call, f"unknown tool {call.name!r}")
        try:
            arguments = json.loads(call.arguments or "{}")
        except json.JSONDecodeError:
            return _failed(call, "the arguments were not valid JSON")
        if not isinstance(arguments, dict):
            return _failed(call, "the arguments must be a JSON object")
        try:
            return await asyncio.wait_for(function(arguments), timeout=self.timeout_s)
        except TimeoutError:
            return _failed(call, f"the tool did not answer within {self.timeout_s:g} seconds")
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("tool %s failed", call.name)
            return _failed(call, "the tool failed")


def _failed(call: ToolCall, why: str) -> ToolOutcome:
    text = f"Error: {why}. Tell the user you could not look that up, and do not guess."
    return ToolOutcome(output=json.dumps({"error": text}), error=why)
