"""What every browser socket of the gateway does alike: authenticate, admit, relay, tear down.

A socket is one conversation record with one model session behind it (a talk with the
assistant, or a meeting's transcription). Every refusal is accepted first and then closed with
a 44xx code and a reason, because a close before accept reaches browsers as a bare HTTP 403
(see docs/voice-protocol.md). Subclasses say how their conversation starts and what the browser
may send.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from http.cookies import SimpleCookie
from typing import Any, Protocol

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import translation
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.utils.translation.trans_real import parse_accept_lang_header

from accounts.roles import Role
from accounts.selectors import transcription_language_of, user_has_role
from voice import config, shutdown
from voice.limits import (
    process_slot_release,
    process_slot_take,
    upstream_connect_allowed,
    voice_session_admit,
    voice_session_release,
)
from voice.models import Conversation
from voice.realtime.browser_protocol import error_event
from voice.realtime.downstream import Outgoing
from voice.recorder import ConversationRecorder
from voice.services import conversation_end

logger = logging.getLogger(__name__)

CLOSE_NOT_SIGNED_IN = 4401
CLOSE_NO_ROLE = 4403
CLOSE_TOO_SLOW = 4408
CLOSE_LIMIT = 4429
CLOSE_UPSTREAM = 4502
CLOSE_SERVER_ERROR = 1011
# The server process is stopping: the page reconnects (to another process). Not 1012, the
# standard "service restart": daphne lets applications close only with 1000 or 3000-4999.
CLOSE_SERVER_RESTART = 4503

OUTBOUND_QUEUE = 256  # events and audio frames waiting for a slow browser
OUTBOUND_PUT_TIMEOUT_S = 5.0
# Ends of a model session after which the socket is closed by Koe, with these codes.
SESSION_END_CLOSES = {
    "upstream_unavailable": CLOSE_UPSTREAM,
    "settings_refused": CLOSE_UPSTREAM,
    "error": CLOSE_SERVER_ERROR,
}


StrOrPromise = str | Promise


def socket_language(scope: dict[str, Any]) -> str:
    """The language of a socket's words, as for a page: the language switch's cookie, else the
    browser's Accept-Language, else the site's default."""
    headers = {bytes(k).lower(): bytes(v).decode("latin-1") for k, v in scope.get("headers", [])}
    cookies = SimpleCookie(headers.get(b"cookie", ""))
    chosen = cookies.get(settings.LANGUAGE_COOKIE_NAME)
    wanted = [chosen.value] if chosen else []
    wanted += [code for code, _q in parse_accept_lang_header(headers.get(b"accept-language", ""))]
    for code in wanted:
        try:
            return translation.get_supported_language_variant(code)
        except LookupError:
            continue
    return settings.LANGUAGE_CODE


class ModelSession(Protocol):
    """What a socket needs of its model session (RealtimeSession, TranscriptionSession)."""

    end_reason: str

    async def run(self) -> None: ...

    async def wait_ready(self, *, timeout_s: float) -> bool: ...


class GatewaySocket(AsyncWebsocketConsumer):
    # Nothing reaches a gateway socket through the channel layer: without this, every socket
    # would hold a blocking read on Redis (with REDIS_URL set), and a slow one would end it.
    channel_layer_alias = "no channel layer"
    torn_down: asyncio.Future[None] | None = None
    # Said to a browser whose account lacks the employee role.
    no_role_message = gettext_lazy("Your account may not use the voice assistant.")
    start_failed_message = gettext_lazy("Koe could not start the conversation.")

    async def server_stopping(self) -> None:
        """The server process is stopping (voice.shutdown): tell the browser, which reconnects
        (to another process behind the load balancer), then flush and end the conversation."""
        if self.torn_down is not None:  # already ending (the browser left): wait for it
            await self.teardown(reason=Conversation.EndReason.SERVER_SHUTDOWN)
            return
        try:
            with translation.override(self.language_code):
                event = error_event("server_restarting", _("Koe is restarting. Reconnecting…"))
            await self.send(text_data=json.dumps(event))
            self.closed_by_us = True
            await self.close(code=CLOSE_SERVER_RESTART, reason="server_restarting")
        except Exception:
            logger.exception("could not tell the browser that the server stops")
        await self.teardown(reason=Conversation.EndReason.SERVER_SHUTDOWN)

    async def connect(self) -> None:
        # Everything per connection is set here, on the instance.
        self.user: Any = self.scope.get("user")
        self.admitted = False
        self.process_slot = False
        self.closed_by_us = False
        self.conversation: Conversation | None = None
        self.recorder: ConversationRecorder | None = None
        self.session: Any = None
        self.session_task: asyncio.Task[None] | None = None
        self.sender_task: asyncio.Task[None] | None = None
        self.ready_task: asyncio.Task[None] | None = None
        self.outbound: asyncio.Queue[Outgoing] = asyncio.Queue(maxsize=OUTBOUND_QUEUE)
        self.audio_writes: set[asyncio.Task[None]] = set()

        self.language_code: str = socket_language(self.scope)
        await self.accept()
        if shutdown.draining():
            await self.refuse(
                CLOSE_SERVER_RESTART,
                "server_restarting",
                gettext_lazy("Koe is restarting. Reconnecting…"),
            )
            return
        if self.user is None or not self.user.is_authenticated:
            await self.refuse(
                CLOSE_NOT_SIGNED_IN, "not_signed_in", gettext_lazy("Sign in to talk to Koe.")
            )
            return
        if not await database_sync_to_async(user_has_role)(user=self.user, role=Role.EMPLOYEE):
            await self.refuse(CLOSE_NO_ROLE, "no_role", self.no_role_message)
            return
        # The language the user speaks (their own setting): transcription is set to it.
        self.spoken_language: str = await database_sync_to_async(transcription_language_of)(
            user=self.user
        )
        with translation.override(self.language_code):  # said in the page's language
            unavailable = config.spoken_language_unavailable(language=self.spoken_language)
        if unavailable:
            await self.refuse(CLOSE_UPSTREAM, "language_unavailable", unavailable)
            return
        if not process_slot_take():
            await self.refuse(
                CLOSE_SERVER_RESTART, "server_busy", gettext_lazy("Koe is busy. Trying again…")
            )
            return
        self.process_slot = True
        refusal = await voice_session_admit(user_id=self.user.pk)
        if refusal is not None:
            self.release_process_slot()
            await self.refuse(
                CLOSE_LIMIT, "limit_reached", refusal.reason, retry_after=refusal.retry_after_s
            )
            return
        self.admitted = True
        try:
            await self.start_conversation()
        except Exception:
            logger.exception("%s could not start", type(self).__name__)
            if self.admitted:  # a teardown meanwhile has given the slot back already
                self.admitted = False
                await voice_session_release(user_id=self.user.pk)
            self.release_process_slot()
            await self.refuse(CLOSE_SERVER_ERROR, "server_error", self.start_failed_message)
            return
        self.sender_task = asyncio.create_task(self.send_loop())
        self.session_task = asyncio.create_task(self.run_session())
        self.ready_task = asyncio.create_task(self.announce_ready())
        shutdown.conversation_live(self)
        if shutdown.draining():
            # The stop began while this conversation was starting: end it like the others.
            await self.server_stopping()

    async def start_conversation(self) -> None:
        """Open the conversation record, its recorder and its model session (self.session)."""
        raise NotImplementedError

    def ready_event(self) -> dict[str, Any]:
        """What the browser is told once the model session is open."""
        assert self.conversation is not None
        return {"type": "ready", "conversation_id": str(self.conversation.public_id)}

    async def end_session(self, reason: str) -> None:
        """Stop the model session (subclasses may first let it finish what it heard)."""
        await self.session.close(reason)

    async def announce_ready(self) -> None:
        """Tell the browser once the model session is open (commands sent earlier wait)."""
        if await self.session.wait_ready(timeout_s=60) and not self.session.end_reason:
            await self.emit(self.ready_event())

    async def refuse(
        self, code: int, error: str, message: StrOrPromise, retry_after: int = 0
    ) -> None:
        with translation.override(self.language_code):
            event = error_event(error, str(message))
        if retry_after:
            event["retry_after"] = retry_after
        await self.send(text_data=json.dumps(event))
        reason = f"{error}; retry-after={retry_after}" if retry_after else error
        self.closed_by_us = True
        await self.close(code=code, reason=reason)

    async def run_session(self) -> None:
        await self.session.run()
        code = SESSION_END_CLOSES.get(self.session.end_reason)
        if code is not None and not self.closed_by_us:
            # The browser gets the error event before the close.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.outbound.join(), timeout=OUTBOUND_PUT_TIMEOUT_S)
            self.closed_by_us = True
            await self.close(code=code, reason=self.session.end_reason)

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels closes stale database connections before every message, which is a hop to
        # a worker thread: 50 of them a second per browser for audio alone (bench/gateway.py).
        # Frames touch no database here, and every database call of this consumer goes through
        # database_sync_to_async, which does that closing itself.
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
            return
        await super().dispatch(message)

    # -- session -> browser -----------------------------------------------------------------------
    async def emit(self, out: Outgoing) -> None:
        try:
            self.outbound.put_nowait(out)  # the usual case: room in the queue, no waiting
            return
        except asyncio.QueueFull:
            pass
        try:
            await asyncio.wait_for(self.outbound.put(out), timeout=OUTBOUND_PUT_TIMEOUT_S)
        except TimeoutError:
            # The browser does not read: stop rather than let memory grow.
            logger.warning("socket of user %s too slow, closing", getattr(self.user, "pk", None))
            if not self.closed_by_us:
                self.closed_by_us = True
                await self.close(code=CLOSE_TOO_SLOW, reason="client_too_slow")

    async def send_loop(self) -> None:
        while True:
            out = await self.outbound.get()
            try:
                if isinstance(out, bytes):
                    await self.send(bytes_data=out)
                else:
                    await self.send(text_data=json.dumps(out, ensure_ascii=False))
            finally:
                self.outbound.task_done()

    # -- teardown ---------------------------------------------------------------------------------
    async def disconnect(self, code: int) -> None:
        await self.teardown(reason="client_closed")

    async def teardown(self, *, reason: str) -> None:
        """End the model session, flush the records and end the conversation: once, and
        every caller (the browser leaving, the server stopping) waits for that one to finish."""
        if self.torn_down is None:
            self.torn_down = asyncio.ensure_future(self._teardown(reason))
        await asyncio.shield(self.torn_down)

    async def _teardown(self, reason: str) -> None:
        try:
            await self._end_everything(reason)
        finally:
            shutdown.conversation_gone(self)

    def release_process_slot(self) -> None:
        if self.process_slot:
            self.process_slot = False
            process_slot_release()

    async def _end_everything(self, reason: str) -> None:
        # Give the slots back first: nothing below may keep the user locked out.
        self.release_process_slot()
        if self.admitted:
            self.admitted = False
            with contextlib.suppress(Exception):
                await voice_session_release(user_id=self.user.pk)
        try:
            if self.session is not None:
                await self.end_session(reason)
            if self.session_task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.session_task, timeout=10)
        finally:
            for task in (self.sender_task, self.ready_task):
                if task is not None:
                    task.cancel()
            if self.audio_writes:
                # The last turns' audio files, then their records.
                with contextlib.suppress(Exception):
                    await asyncio.wait(set(self.audio_writes), timeout=10)
            if self.recorder is not None:
                # Bounded by the recorder's own close deadline (30 s of retries).
                with contextlib.suppress(Exception):
                    await self.recorder.close()
            if self.conversation is not None:
                ended = self.session.end_reason if self.session is not None else "error"
                with contextlib.suppress(Exception):
                    await database_sync_to_async(conversation_end)(
                        conversation=self.conversation, reason=ended or reason
                    )


async def reconnect_gate() -> float:
    """Seconds a reconnecting session must wait for the global connection rate (0 = go)."""
    refusal = await upstream_connect_allowed()
    return 0.0 if refusal is None else float(refusal.retry_after_s)
