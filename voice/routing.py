"""WebSocket routes of the voice gateway (the consumer arrives with the gateway issue)."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
