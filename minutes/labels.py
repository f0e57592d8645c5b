"""The words of the minutes page's script, translated for the request's language."""

from __future__ import annotations

from django.utils.translation import gettext as _

from portal.voice_labels import connection_labels


def recorder_labels() -> dict[str, object]:
    return {
        "connection": connection_labels(),
        "pause": _("Pause"),
        "resume": _("Resume"),
        "noMicrophone": _(
            "Koe cannot use your microphone. Allow microphone access for this site and try again."
        ),
        "reconnected": _("Reconnected. The minutes go on without a gap."),
        "newRecord": _(
            "The connection broke: the minutes go on in a new record. Both are in the list below."
        ),
        "status": {
            "idle": _("Not recording."),
            "connecting": _("Connecting…"),
            "reconnecting": _("Connection lost, reconnecting…"),
            "listening": _("Recording"),
            "paused": _("Paused"),
            "saving": _("Saving the last words…"),
            "saved": _("Saved."),
        },
    }
