import json

from voice.realtime.beta import BetaUpstream, client_event_to_beta, server_event_to_ga
from voice.realtime.policy import SessionPolicy, TurnMode, session_update_event


def test_ga_session_update_becomes_the_flat_beta_layout():
    ga = session_update_event(SessionPolicy(transcription_language="ja"), TurnMode.HANDS_FREE)
    beta = client_event_to_beta(ga)["session"]
    assert "type" not in beta and "audio" not in beta
    assert beta["modalities"] == ["audio", "text"]
    assert beta["input_audio_format"] == "pcm16" and beta["output_audio_format"] == "pcm16"
    assert beta["voice"] == "alloy"
    assert beta["input_audio_transcription"]["language"] == "ja"
    assert beta["turn_detection"]["type"] == "server_vad"
    assert beta["tools"][0]["name"] == "search_knowledge"
    assert beta["max_response_output_tokens"] == 1024


def test_replayed_assistant_text_uses_the_beta_content_type():
    event = {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "hi"}],
        },
    }
    assert client_event_to_beta(event)["item"]["content"] == [{"type": "text", "text": "hi"}]


def test_beta_server_events_get_ga_names():
    assert server_event_to_ga({"type": "response.audio.delta", "delta": "AA"})["type"] == (
        "response.output_audio.delta"
    )
    assert server_event_to_ga({"type": "conversation.item.created"})["type"] == (
        "conversation.item.added"
    )
    assert server_event_to_ga({"type": "response.done"}) == {"type": "response.done"}


class Recorder:
    def __init__(self, incoming: list[str]) -> None:
        self.sent: list[str] = []
        self.incoming = incoming

    async def send(self, message: str) -> None:
        self.sent.append(message)

    async def recv(self) -> str:
        return self.incoming.pop(0)

    async def close(self) -> None:
        pass


async def test_the_wrapper_translates_both_ways():
    inner = Recorder([json.dumps({"type": "response.audio_transcript.done", "transcript": "x"})])
    upstream = BetaUpstream(inner)
    await upstream.send(json.dumps(session_update_event(SessionPolicy(), TurnMode.PUSH_TO_TALK)))
    assert json.loads(inner.sent[0])["session"]["turn_detection"] is None
    got = json.loads(await upstream.recv())
    assert got == {"type": "response.output_audio_transcript.done", "transcript": "x"}


async def test_the_azure_preview_provider_speaks_beta_on_the_wire():
    from voice.realtime.providers import (
        ProviderConfig,
        ProviderKind,
        auth_headers_factory,
        upstream_connector,
    )
    from voice.tests.fake_upstream import FakeUpstream

    fake = await FakeUpstream().start()
    try:
        config = ProviderConfig(
            kind=ProviderKind.AZURE_PREVIEW,
            endpoint=fake.url.split("/v1/")[0].replace("ws://", "http://"),
            model="rt-preview",
            api_key="azure-key",
        )
        upstream = await upstream_connector(config, auth_headers_factory(config))()
        assert json.loads(await upstream.recv())["type"] == "session.created"  # type: ignore[attr-defined]
        await upstream.send(  # type: ignore[attr-defined]
            json.dumps(session_update_event(SessionPolicy(), TurnMode.HANDS_FREE))
        )
        conn = await fake.wait_for("session.update")
        assert conn.path == "/openai/realtime?api-version=2025-04-01-preview&deployment=rt-preview"
        assert conn.headers["api-key"] == "azure-key"
        sent = conn.of_type("session.update")[0]["session"]
        assert "audio" not in sent and sent["input_audio_format"] == "pcm16"
        await upstream.close()  # type: ignore[attr-defined]
    finally:
        await fake.stop()
