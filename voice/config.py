"""Provider and policy from Django settings: the one place the gateway reads its settings."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.translation import get_language_info, gettext

from voice.engine.stt import LANGUAGES
from voice.realtime.policy import DEFAULT_INSTRUCTIONS, SessionPolicy, VadKind
from voice.realtime.providers import (
    EntraTokenSource,
    HeaderFactory,
    ProviderConfig,
    ProviderKind,
    auth_headers_factory,
)
from voice.realtime.session import SessionSettings
from voice.realtime.transcription import TranscriptionSettings


def provider_config() -> ProviderConfig:
    kind = ProviderKind(settings.KOE_REALTIME_PROVIDER)
    common = {"max_session_seconds": settings.KOE_REALTIME_MAX_SESSION_SECONDS}
    if kind in (ProviderKind.AZURE, ProviderKind.AZURE_PREVIEW):
        return ProviderConfig(
            kind=kind,
            endpoint=settings.AZURE_OPENAI_ENDPOINT,
            model=settings.AZURE_OPENAI_REALTIME_DEPLOYMENT,
            api_key=settings.AZURE_OPENAI_API_KEY,
            use_entra_id=not settings.AZURE_OPENAI_API_KEY,
            api_version=settings.AZURE_OPENAI_API_VERSION,
            **common,
        )
    if kind == ProviderKind.OPENAI:
        return ProviderConfig(
            kind=kind,
            endpoint=settings.OPENAI_BASE_URL,
            model=settings.OPENAI_REALTIME_MODEL,
            api_key=settings.OPENAI_API_KEY,
            **common,
        )
    return ProviderConfig(
        kind=kind,
        endpoint=settings.KOE_LOCAL_REALTIME_URL,
        model="koe-local",
        api_key=settings.KOE_LOCAL_REALTIME_KEY,
        **common,
    )


@cache
def _entra_tokens() -> EntraTokenSource:
    # DefaultAzureCredential: managed identity in Azure, developer sign-in elsewhere; one per
    # process so every session shares the cached token.
    from azure.identity.aio import DefaultAzureCredential

    return EntraTokenSource(DefaultAzureCredential())


def provider_headers(config: ProviderConfig) -> HeaderFactory:
    return auth_headers_factory(config, entra=_entra_tokens() if config.use_entra_id else None)


def session_policy(*, language: str | None = None) -> SessionPolicy:
    """The server's policy of a conversation; `language` is the user's transcription language
    ("" = detect; None = the site's KOE_TRANSCRIPTION_LANGUAGE)."""
    if language is None:
        language = settings.KOE_TRANSCRIPTION_LANGUAGE
    return SessionPolicy(
        instructions=settings.KOE_VOICE_INSTRUCTIONS or DEFAULT_INSTRUCTIONS,
        voice=settings.KOE_VOICE,
        transcription_model=settings.KOE_TRANSCRIPTION_MODEL,
        transcription_language=language or None,
        vad=VadKind(settings.KOE_TURN_DETECTION),
    )


def session_settings(config: ProviderConfig) -> SessionSettings:
    return SessionSettings(
        max_session_seconds=config.max_session_seconds,
        # A minute before the limit, or a tenth of very short (test) limits.
        rollover_margin_s=min(60.0, config.max_session_seconds / 10),
        # The offline engine says nothing while it transcribes and speaks, and its sessions
        # queue for two threads: long silences there are load, not a hung session.
        response_timeout_s=120.0 if config.kind == ProviderKind.LOCAL else 20.0,
    )


def transcription_settings(config: ProviderConfig, *, language: str) -> TranscriptionSettings:
    """A meeting's transcription session: the transcription model and the user's language."""
    return TranscriptionSettings(
        model=settings.KOE_TRANSCRIPTION_MODEL,
        language=language,
        max_session_seconds=config.max_session_seconds,
        rollover_margin_s=min(60.0, config.max_session_seconds / 10),
    )


def spoken_language_unavailable(*, language: str) -> str:
    """Why the configured model cannot transcribe `language` ("" when it can): the offline
    engine's packaged Whisper knows only its own languages, and says so rather than mishear."""
    if provider_config().kind != ProviderKind.LOCAL or not language or language in LANGUAGES:
        return ""
    return gettext(
        "Koe's offline engine cannot transcribe %(language)s: its speech models know only "
        "English and Japanese. Choose another language, or ask your administrator to connect "
        "Azure OpenAI."
    ) % {"language": _language_name(language)}


def _language_name(code: str) -> str:
    try:
        return str(get_language_info(code)["name_local"])
    except KeyError:
        return code
