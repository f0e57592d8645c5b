"""The browser's minutes socket: a meeting's audio in, its segments out, recorded as it goes.

Admission, limits and teardown are the gateway's (voice.gateway_socket); the transcription
session is voice.realtime.transcription. The browser may send audio and pause, resume, stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async
from django.urls import reverse
from django.utils.translation import gettext_lazy

from minutes.services import minutes_start
from voice import config
from voice.gateway_socket import OUTBOUND_PUT_TIMEOUT_S, GatewaySocket, reconnect_gate
from voice.models import Conversation
from voice.realtime.browser_protocol import (
    InboundLimits,
    Pause,
    ProtocolError,
    Resume,
    audio_frame_check,
    minutes_command_parse,
)
from voice.realtime.providers import upstream_connector
from voice.realtime.session import Record
from voice.realtime.transcription import Segment, TranscriptionSession
from voice.recorder import ConversationRecorder

# How long the model may take to finish the segments it has heard when the meeting ends (when
# the server stops, less: the whole stop has 25 s).
DRAIN_S = 15.0
DRAIN_ON_SHUTDOWN_S = 5.0


class MinutesConsumer(GatewaySocket):
    no_role_message = gettext_lazy("Your account may not take meeting minutes.")
    start_failed_message = gettext_lazy("Koe could not start the minutes.")

    async def start_conversation(self) -> None:
        self.inbound_limits = InboundLimits()
        self.stopping = False
        self.gap_recorded = False
        provider = config.provider_config()
        self.language = self.spoken_language
        settings = config.transcription_settings(provider, language=self.language)
        self.minutes = await database_sync_to_async(minutes_start)(
            user=self.user,
            provider=provider.kind.value,
            model=settings.model,
            language=self.language,
        )
        self.conversation = self.minutes.conversation
        self.recorder = ConversationRecorder(conversation=self.conversation)
        self.recorder.start()
        self.session = TranscriptionSession(
            connect=upstream_connector(  # type: ignore[arg-type]
                provider, config.provider_headers(provider), intent="transcription"
            ),
            settings=settings,
            emit=self.emit,
            segment=self.record_segment,
            rollover=self.record_rollover,
            reconnect_gate=reconnect_gate,
        )

    def record_segment(self, segment: Segment) -> None:
        assert self.recorder is not None
        self.recorder.record(
            Record(
                "segment",
                {
                    "item_id": segment.segment_id,
                    "start_ms": segment.start_ms,
                    "end_ms": segment.end_ms,
                    "text": segment.text,
                    "speaker": segment.speaker,
                    **({"failed": True} if segment.failed else {}),
                },
            )
        )

    def record_rollover(self, reason: str) -> None:
        assert self.recorder is not None
        self.recorder.record(Record("rollover", {"reason": reason}))

    def minutes_url(self) -> str:
        assert self.conversation is not None
        return reverse("minutes:detail", args=[self.conversation.public_id])

    def ready_event(self) -> dict[str, Any]:
        return {**super().ready_event(), "language": self.language, "url": self.minutes_url()}

    async def end_session(self, reason: str) -> None:
        session: TranscriptionSession = self.session
        shutting_down = reason == Conversation.EndReason.SERVER_SHUTDOWN
        await session.close(reason, drain_s=DRAIN_ON_SHUTDOWN_S if shutting_down else DRAIN_S)
        if session.dropped_ms and self.recorder is not None and not self.gap_recorded:
            # Audio beyond what Koe holds while no model session is open: the record says so.
            self.gap_recorded = True
            self.recorder.record(Record("audio_dropped", {"ms": session.dropped_ms}))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        session: TranscriptionSession | None = self.session
        if session is None or self.stopping:
            return
        try:
            if bytes_data is not None:
                audio_frame_check(bytes_data)
                self.inbound_limits.audio_allowed(len(bytes_data))
                await session.audio(bytes_data)
            elif text_data is not None:
                self.inbound_limits.command_allowed()
                command = minutes_command_parse(text_data)
                if isinstance(command, Pause):
                    await session.pause()
                elif isinstance(command, Resume):
                    await session.resume()
                else:
                    await self.stop()
        except ProtocolError as exc:
            await self.emit(exc.event())

    async def stop(self) -> None:
        """The meeting is over: the last segment is transcribed and stored, the page is told
        where the minutes are, then the socket closes normally."""
        self.stopping = True
        await self.end_session(Conversation.EndReason.CLIENT_CLOSED)
        if self.session_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session_task, timeout=10)
        if self.recorder is not None:
            await self.recorder.close()  # every segment is stored before the page goes to them
        await self.emit({"type": "stopped", "url": self.minutes_url()})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.outbound.join(), timeout=OUTBOUND_PUT_TIMEOUT_S)
        # Sealed before the close, not when the browser answers it (it may never do so).
        await self.teardown(reason=Conversation.EndReason.CLIENT_CLOSED)
        self.closed_by_us = True
        await self.close(code=1000)
