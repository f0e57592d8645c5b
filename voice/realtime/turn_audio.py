"""The audio of each turn, for the optional recording (KOE_RECORD_AUDIO): what the user said
and what the assistant said, cut per conversation item.

User turns are cut from a log of the audio sent to the current model session: with server turn
detection at the `audio_start_ms` / `audio_end_ms` the model reports (its own clock of that same
audio), in push-to-talk from the last commit to this one. Assistant turns are the audio deltas
of their item. Plain data, no I/O: the session hands the cut audio to whoever stores it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BYTES_PER_MS = 48
LOG_MS = 120_000  # the longest user turn kept whole; older audio is dropped as it ages
# Hands-free, while nobody speaks: the model reports a turn's start a little after it (its
# detection delay and prefix padding); a few seconds cover that. Everything older goes, so a
# quiet conversation holds 240 KB here, not two minutes (5.8 MB) of silence.
QUIET_KEEP_MS = 5_000


@dataclass
class TurnAudio:
    _log: bytearray = field(default_factory=bytearray)
    _log_start_ms: int = 0  # the session time (ms of audio sent) at which the log begins
    _sent_ms: int = 0
    _last_commit_ms: int = 0
    _speech: dict[str, list[int]] = field(default_factory=dict)  # item -> [start, end]
    _answers: dict[str, bytearray] = field(default_factory=dict)
    # Hands-free turns are cut where the model heard them; push-to-talk turns run from commit
    # to commit (the session says which, as the mode changes).
    hands_free: bool = True

    def session_opened(self) -> None:
        """A fresh model session counts its audio from zero again."""
        self._log.clear()
        self._log_start_ms = self._sent_ms = self._last_commit_ms = 0
        self._speech.clear()

    def sent(self, pcm: bytes) -> None:
        self._log += pcm
        self._sent_ms = self._log_start_ms + len(self._log) // BYTES_PER_MS
        if not self.hands_free:
            keep_from = self._last_commit_ms  # the turn being held is all of it
        elif self._speech:
            keep_from = min(start for start, _ in self._speech.values())
        else:
            keep_from = self._sent_ms - QUIET_KEEP_MS
        excess = (max(keep_from, self._sent_ms - LOG_MS) - self._log_start_ms) * BYTES_PER_MS
        if excess > 0:
            del self._log[:excess]
            self._log_start_ms += excess // BYTES_PER_MS

    def speech_started(self, item_id: str, audio_start_ms: int) -> None:
        self._speech[item_id] = [audio_start_ms, -1]

    def speech_stopped(self, item_id: str, audio_end_ms: int) -> None:
        self._speech.setdefault(item_id, [self._last_commit_ms, -1])[1] = audio_end_ms

    def cleared(self) -> None:
        self._last_commit_ms = self._sent_ms

    def committed(self, item_id: str) -> bytes:
        """The user's audio of the item just committed."""
        start, end = self._speech.pop(item_id, [self._last_commit_ms, -1])
        if end < 0:
            end = self._sent_ms  # push-to-talk: everything since the last commit
        self._last_commit_ms = max(self._last_commit_ms, end)
        first = max(0, (start - self._log_start_ms) * BYTES_PER_MS)
        last = max(0, (end - self._log_start_ms) * BYTES_PER_MS)
        return bytes(self._log[first:last])

    def answer_audio(self, item_id: str, pcm: bytes) -> None:
        self._answers.setdefault(item_id, bytearray()).extend(pcm)

    def answer_done(self, item_id: str) -> bytes:
        """The assistant's audio of the item, once it is complete (or cut off)."""
        return bytes(self._answers.pop(item_id, b""))
