"""The words of the voice page's script, given to it by the template (one place to translate)."""

from __future__ import annotations

VOICE_LABELS: dict[str, object] = {
    "user": "You",
    "assistant": "Koe",
    "sources": "Sources",
    "start": "Start talking",
    "stop": "Stop talking",
    "hold": "Hold to talk",
    "release": "Release to send",
    "mute": "Mute",
    "unmute": "Unmute",
    "microphone": "Microphone",
    "notUnderstood": "(Koe could not make out these words.)",
    "noMicrophone": "Koe cannot use your microphone. Allow microphone access for this site, "
    "or type your question below.",
    "holdLonger": "Hold the button (or the space bar) while you talk.",
    "reconnected": "Reconnected. The conversation goes on.",
    "newConversation": "Reconnected. This is a new conversation: Koe does not remember the "
    "questions before the break.",
    "noAudio": "This browser cannot play or record Koe's audio here. You can still type your "
    "questions.",
    "connectionLost": "The connection to Koe was lost. Press the button to start again.",
    "somethingWrong": "Something went wrong.",
    "status": {
        "idle": "Press the button and ask a question.",
        "connecting": "Connecting…",
        "reconnecting": "Connection lost, reconnecting…",
        "listening": "Listening",
        "ready_to_type": "Ready: type a question, or press Start talking",
        "ready": "Ready: hold the button or the space bar to talk",
        "hearing": "Listening while you hold",
        "muted": "Muted",
        "thinking": "Thinking…",
        "searching": "Searching the documents…",
        "speaking": "Speaking",
    },
}
