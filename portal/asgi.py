"""ASGI entry point: HTTP goes to Django, WebSockets to the Channels routes of the voice app."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from minutes.routing import websocket_urlpatterns as minutes_urlpatterns  # noqa: E402
from voice.routing import engine_urlpatterns, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(
            [
                # The offline engine: server to server, by key, never from a browser.
                *engine_urlpatterns,
                # Everything else is for the browser: its origin and session are checked.
                re_path(
                    r"",
                    AllowedHostsOriginValidator(
                        AuthMiddlewareStack(
                            URLRouter([*websocket_urlpatterns, *minutes_urlpatterns])
                        )
                    ),
                ),
            ]
        ),
    }
)
