"""What each person chose for themselves (Koe keeps no other account data: Entra ID does)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Preference(models.Model):
    class TranscriptionLanguage(models.TextChoices):
        AUTO = "", "detect the language"
        JAPANESE = "ja", "日本語"
        ENGLISH = "en", "English"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="koe_preference"
    )
    # The language the user speaks to Koe and in meetings ("" = the model detects it).
    transcription_language = models.CharField(
        max_length=8, choices=TranscriptionLanguage.choices, blank=True, default=""
    )

    def __str__(self) -> str:
        return f"preferences of user {self.user_id}"
