"""WebSocket route of meeting minutes."""

from django.urls import path

from minutes.consumers import MinutesConsumer

websocket_urlpatterns = [path("ws/minutes/", MinutesConsumer.as_asgi())]
