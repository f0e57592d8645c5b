"""Settings for the test suite: Koe's settings, with background tasks run at once."""

from portal.settings import *  # noqa: F403

TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
