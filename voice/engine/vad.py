"""Server voice activity detection: Silero VAD (bundled with faster-whisper), as a stream.

Follows the Realtime API's `server_vad` settings: `threshold` on the speech probability,
`prefix_padding_ms` of audio kept before the detected start, and `silence_duration_ms` of quiet
that ends the turn. Times are milliseconds of input audio since the session began, as the
protocol's `audio_start_ms` / `audio_end_ms` are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from voice.engine.audio import WHISPER_RATE, pcm16_to_float, resample_24k_to_16k
from voice.engine.checksums import model_file_verified

WINDOW = 512  # samples at 16 kHz the model scores at once: 32 ms
WINDOW_MS = WINDOW * 1000 // WHISPER_RATE
# The model restarts its state on every call, so each call sees this much audio before the new
# windows: enough for it to settle, cheap enough to run every 100 ms per session.
CONTEXT_WINDOWS = 8
# Once speaking, a turn ends on probabilities this far under the threshold (Silero's usual
# hysteresis), so a breath inside a sentence does not end it.
HYSTERESIS = 0.15


@dataclass(frozen=True)
class VadSettings:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500


@dataclass(frozen=True)
class VadEvent:
    kind: Literal["started", "stopped"]
    at_ms: int


class SpeechDetector:
    """Feed PCM16 24 kHz as it arrives; get speech started/stopped events back."""

    def __init__(self, settings: VadSettings | None = None, *, start_ms: int = 0) -> None:
        from faster_whisper.vad import get_assets_path, get_vad_model

        model_file_verified("silero_vad_v6", str(Path(get_assets_path()) / "silero_vad_v6.onnx"))
        self.settings = settings or VadSettings()
        self._model = get_vad_model()
        # 24 kHz samples waiting for a whole 3-sample group: resampling each frame on its own
        # would drop samples (a 128-sample frame is not a multiple of 3) and the clock would
        # drift from the session's by seconds an hour.
        self._pending_24k = np.empty(0, dtype=np.float32)
        self._pending = np.empty(0, dtype=np.float32)
        self._context = np.zeros(CONTEXT_WINDOWS * WINDOW, dtype=np.float32)
        # Input audio scored so far, on the session's clock (a detector made mid-session
        # starts at the session's time, not at zero).
        self._scored_ms = start_ms
        self.speaking = False
        self._quiet_ms = 0
        self._stopped_at_ms = start_ms

    def feed(self, pcm: bytes) -> list[VadEvent]:
        fresh_24k = np.concatenate([self._pending_24k, pcm16_to_float(pcm)])
        usable = fresh_24k.size - fresh_24k.size % 3
        self._pending_24k = fresh_24k[usable:]
        self._pending = np.concatenate([self._pending, resample_24k_to_16k(fresh_24k[:usable])])
        whole = self._pending.size - self._pending.size % WINDOW
        if whole == 0:
            return []
        fresh, self._pending = self._pending[:whole], self._pending[whole:]
        audio = np.concatenate([self._context, fresh])
        probabilities = self._model(audio).reshape(-1)[-(whole // WINDOW) :]
        self._context = audio[-CONTEXT_WINDOWS * WINDOW :]
        events: list[VadEvent] = []
        for probability in probabilities:
            self._scored_ms += WINDOW_MS
            event = self._step(float(probability))
            if event is not None:
                events.append(event)
        return events

    def reset(self) -> None:
        """Forget a turn in progress (the buffer was cleared or committed by hand)."""
        self.speaking = False
        self._quiet_ms = 0

    def _step(self, probability: float) -> VadEvent | None:
        settings = self.settings
        if not self.speaking:
            if probability >= settings.threshold:
                self.speaking = True
                self._quiet_ms = 0
                start = self._scored_ms - WINDOW_MS - settings.prefix_padding_ms
                # The padding never reaches back into the turn that just ended.
                return VadEvent("started", max(self._stopped_at_ms, start))
            return None
        if probability < settings.threshold - HYSTERESIS:
            self._quiet_ms += WINDOW_MS
            if self._quiet_ms >= settings.silence_duration_ms:
                self.speaking = False
                self._quiet_ms = 0
                self._stopped_at_ms = self._scored_ms
                return VadEvent("stopped", self._scored_ms)
        else:
            self._quiet_ms = 0
        return None
