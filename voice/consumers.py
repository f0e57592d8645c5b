"""The browser's voice socket: a talk with the assistant.

Thin edge: admission and teardown are voice.gateway_socket's, the protocol lives in
voice.realtime, records in voice.recorder/services.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from voice import config
from voice.gateway_socket import GatewaySocket, reconnect_gate
from voice.knowledge import search_knowledge_tool
from voice.realtime.browser_protocol import (
    InboundLimits,
    ProtocolError,
    audio_frame_check,
    command_parse,
)
from voice.realtime.policy import TurnMode
from voice.realtime.providers import upstream_connector
from voice.realtime.session import RealtimeSession, Record
from voice.realtime.tools import ToolBox
from voice.recorder import ConversationRecorder
from voice.recordings import turn_audio_store
from voice.services import conversation_start

logger = logging.getLogger(__name__)


class VoiceConsumer(GatewaySocket):
    async def start_conversation(self) -> None:
        self.inbound_limits = InboundLimits()
        provider = config.provider_config()
        self.conversation = await database_sync_to_async(conversation_start)(
            user=self.user, provider=provider.kind.value, model=provider.model
        )
        self.recorder = ConversationRecorder(conversation=self.conversation)
        self.recorder.start()
        self.session = RealtimeSession(
            connect=upstream_connector(provider, config.provider_headers(provider)),  # type: ignore[arg-type]
            policy=config.session_policy(language=self.spoken_language),
            tools=ToolBox(
                functions={"search_knowledge": search_knowledge_tool(user=self.user)},
                timeout_s=settings.KOE_TOOL_TIMEOUT_SECONDS,
            ),
            emit=self.emit,
            record=self.recorder.record,
            mode=TurnMode.HANDS_FREE,
            settings=config.session_settings(provider),
            reconnect_gate=reconnect_gate,
            store_audio=self.store_turn_audio if settings.KOE_RECORD_AUDIO else None,
        )

    def ready_event(self) -> dict[str, Any]:
        return {**super().ready_event(), "mode": TurnMode.HANDS_FREE.value}

    def store_turn_audio(self, item_id: str, role: str, pcm: bytes) -> None:
        """Write a turn's audio in a thread, then add its record (KOE_RECORD_AUDIO)."""
        task = asyncio.create_task(self.write_turn_audio(item_id, role, pcm))
        self.audio_writes.add(task)
        task.add_done_callback(self.audio_writes.discard)

    async def write_turn_audio(self, item_id: str, role: str, pcm: bytes) -> None:
        assert self.conversation is not None and self.recorder is not None
        try:
            stored = await asyncio.to_thread(
                turn_audio_store,
                conversation_public_id=str(self.conversation.public_id),
                item_id=item_id,
                role=role,
                pcm=pcm,
            )
        except OSError:
            logger.exception("the audio of turn %s could not be stored", item_id)
            self.recorder.record(Record("audio_lost", {"item_id": item_id, "role": role}))
            return
        self.recorder.record(
            Record(
                "audio",
                {
                    "item_id": item_id,
                    "role": role,
                    "file": stored.name,
                    "duration_ms": stored.duration_ms,
                    "sha256": stored.sha256,
                },
            )
        )

    # -- browser -> session -----------------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None:
            return
        try:
            if bytes_data is not None:
                audio_frame_check(bytes_data)
                self.inbound_limits.audio_allowed(len(bytes_data))
                await self.session.audio(bytes_data)
            elif text_data is not None:
                self.inbound_limits.command_allowed()
                await self.session.command(command_parse(text_data))
        except ProtocolError as exc:
            await self.emit(exc.event())
