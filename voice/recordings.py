"""The optional recording of each turn's audio (KOE_RECORD_AUDIO, off by default).

Each turn becomes a WAV file (PCM16 mono 24 kHz) under `recordings/<conversation>/` in the media
storage, written in a thread, never on the event loop; its audit record keeps the file's name,
length and SHA-256, so a swapped file shows. Only auditors play them; the retention purge
deletes them with their conversation.
"""

from __future__ import annotations

import hashlib
import io
import wave
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

RATE = 24_000


@dataclass(frozen=True)
class StoredAudio:
    name: str
    duration_ms: int
    sha256: str


def wav_bytes(pcm: bytes) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm)
    return buffer.getvalue()


def turn_audio_store(
    *, conversation_public_id: str, item_id: str, role: str, pcm: bytes
) -> StoredAudio:
    """Write one turn's audio (blocking: call it from a thread)."""
    data = wav_bytes(pcm)
    wanted = f"recordings/{conversation_public_id}/{item_id}-{role}.wav"
    name = default_storage.save(wanted, ContentFile(data))
    return StoredAudio(
        name=name, duration_ms=len(pcm) // 48, sha256=hashlib.sha256(data).hexdigest()
    )
