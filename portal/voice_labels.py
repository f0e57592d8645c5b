"""The words of the page scripts (static/voice, static/minutes), in the request's language.

The scripts are plain ES modules with no build step under a strict CSP; rather than a second
catalog, the template hands them their words as JSON (json_script), translated here through
the same gettext catalog as the templates, so one test finds every missing translation.
"""

from __future__ import annotations

from django.utils.translation import gettext as _


def connection_labels() -> dict[str, str]:
    """What the socket client says when a socket closes for good (by close code)."""
    return {
        "4401": _("Your session has ended. Sign in again to talk to Koe."),
        "4403": _("Your account may not use the voice assistant."),
        "4429": _("You have reached a limit for now."),
        "4502": _("The assistant is not reachable at the moment. Try again in a little while."),
        "tryAgainIn": _("Try again in {minutes} minute(s)."),
        "lost": _("The connection to Koe was lost."),
    }


def voice_labels() -> dict[str, object]:
    return {
        "user": _("You"),
        "assistant": "Koe",
        "sources": _("Sources"),
        "start": _("Start talking"),
        "stop": _("Stop talking"),
        "hold": _("Hold to talk"),
        "release": _("Release to send"),
        "mute": _("Mute"),
        "unmute": _("Unmute"),
        "microphone": _("Microphone"),
        "notUnderstood": _("(Koe could not make out these words.)"),
        "noMicrophone": _(
            "Koe cannot use your microphone. Allow microphone access for this site, or type "
            "your question below."
        ),
        "holdLonger": _("Hold the button (or the space bar) while you talk."),
        "reconnected": _("Reconnected. The conversation goes on."),
        "newConversation": _(
            "Reconnected. This is a new conversation: Koe does not remember the questions "
            "before the break."
        ),
        "noAudio": _(
            "This browser cannot play or record Koe's audio here. You can still type your "
            "questions."
        ),
        "connectionLost": _("The connection to Koe was lost. Press the button to start again."),
        "somethingWrong": _("Something went wrong."),
        "connection": connection_labels(),
        "status": {
            "idle": _("Press the button and ask a question."),
            "connecting": _("Connecting…"),
            "reconnecting": _("Connection lost, reconnecting…"),
            "listening": _("Listening"),
            "ready_to_type": _("Ready: type a question, or press Start talking"),
            "ready": _("Ready: hold the button or the space bar to talk"),
            "hearing": _("Listening while you hold"),
            "muted": _("Muted"),
            "thinking": _("Thinking…"),
            "searching": _("Searching the documents…"),
            "speaking": _("Speaking"),
        },
    }
