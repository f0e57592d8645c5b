"""Recorded turn audio: stored as WAV with its hash, played only by auditors, purged."""

from __future__ import annotations

import io
import wave

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from accounts.roles import Role
from audit.models import AccessLogEntry
from voice.recordings import turn_audio_store
from voice.services import conversations_purge

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def recorded(person, talk):
    emi = person("emi", Role.EMPLOYEE)
    pcm = b"\x20\x00" * 24_000  # one second
    conversation = talk(emi, [("transcript", {"item_id": "k_1", "role": "user", "text": "hi"})])
    stored = turn_audio_store(
        conversation_public_id=str(conversation.public_id), item_id="k_1", role="user", pcm=pcm
    )
    from voice.services import EventRecord, conversation_events_append

    conversation_events_append(
        conversation=conversation,
        events=[
            EventRecord(
                2,
                "audio",
                0.0,
                {
                    "item_id": "k_1",
                    "role": "user",
                    "file": stored.name,
                    "duration_ms": stored.duration_ms,
                    "sha256": stored.sha256,
                },
                "k_1",
            )
        ],
    )
    return conversation, stored, pcm


def test_auditors_play_a_turn_and_it_is_logged(person, client_of, recorded):
    conversation, stored, pcm = recorded
    assert stored.duration_ms == 1000
    aiko = client_of(person("aiko", Role.AUDITOR))
    page = aiko.get(f"/audit/conversations/{conversation.public_id}/").content.decode()
    url = f"/audit/conversations/{conversation.public_id}/audio/2.wav"
    assert f'src="{url}"' in page
    response = aiko.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as played:
        assert (played.getframerate(), played.getnchannels()) == (24_000, 1)
        assert played.readframes(played.getnframes()) == pcm
    assert AccessLogEntry.objects.filter(event_type="audio.play", data={"sequence": 2}).exists()
    # Employees do not play recordings, not even their own.
    emi = client_of(conversation.user)
    assert emi.get(url).status_code == 403


def test_a_swapped_recording_is_refused(person, client_of, recorded):
    conversation, stored, _pcm = recorded
    with default_storage.open(stored.name, "wb") as file:
        file.write(b"RIFF not the same audio")
    aiko = client_of(person("aiko", Role.AUDITOR))
    response = aiko.get(f"/audit/conversations/{conversation.public_id}/audio/2.wav")
    assert response.status_code == 409


def test_the_purge_deletes_the_recordings(recorded, backdate, django_capture_on_commit_callbacks):
    conversation, stored, _pcm = recorded
    backdate(conversation, days=40)
    # A file whose record was never written goes too (the folder is emptied).
    stray = default_storage.save(
        f"recordings/{conversation.public_id}/k_9-user.wav", ContentFile(b"x")
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        purge = conversations_purge(retention_days=30)
    assert purge is not None and purge.audio_files == 1
    assert default_storage.exists(stored.name)  # nothing is deleted before the commit
    for callback in callbacks:
        callback()
    assert not default_storage.exists(stored.name) and not default_storage.exists(stray)
