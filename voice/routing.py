"""WebSocket routes of the voice gateway."""

from django.urls import path

from voice.consumers import VoiceConsumer
from voice.engine.consumer import EngineConsumer

websocket_urlpatterns = [path("ws/voice/", VoiceConsumer.as_asgi())]

# The Realtime GA paths of Koe's offline engine (OpenAI's, Azure GA's, Azure preview's).
engine_urlpatterns = [
    path(route, EngineConsumer.as_asgi())
    for route in ("v1/realtime", "openai/v1/realtime", "openai/realtime")
]
