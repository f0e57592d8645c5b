"""PCM conversions between the protocol (PCM16 mono 24 kHz) and the models (float32)."""

from __future__ import annotations

import numpy as np

PROTOCOL_RATE = 24_000  # the Realtime API's audio/pcm rate, and hibari's output rate
WHISPER_RATE = 16_000  # what Whisper and Silero VAD take
BYTES_PER_MS = PROTOCOL_RATE * 2 // 1000  # 48


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    """Little-endian PCM16 to float32 in [-1, 1)."""
    usable = len(pcm) - len(pcm) % 2  # an odd trailing byte is half a sample: drop it
    return np.frombuffer(pcm[:usable], dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """float32 to little-endian PCM16, clipped."""
    clipped = np.clip(samples, -1.0, 32767 / 32768)
    return (clipped * 32768.0).astype("<i2").tobytes()


def resample_24k_to_16k(samples: np.ndarray) -> np.ndarray:
    """24 kHz to 16 kHz for Whisper and the VAD.

    Speech carries little above 8 kHz, so a light low-pass (a 3-tap average) before linear
    interpolation keeps aliasing out of what Whisper hears, at a cost too small to matter.
    """
    if samples.size == 0:
        return samples.astype(np.float32)
    smoothed = np.convolve(samples, np.array([0.25, 0.5, 0.25], dtype=np.float32), mode="same")
    count = samples.size * WHISPER_RATE // PROTOCOL_RATE
    positions = np.arange(count, dtype=np.float64) * (PROTOCOL_RATE / WHISPER_RATE)
    return np.interp(positions, np.arange(samples.size), smoothed).astype(np.float32)


def downsample_48k_to_24k(samples: np.ndarray) -> np.ndarray:
    """48 kHz to the protocol's 24 kHz: the mean of each pair of samples (a low-pass at the
    new Nyquist frequency, good enough for speech), then every second one."""
    even = samples[: samples.size - samples.size % 2].astype(np.float32)
    return (even[0::2] + even[1::2]) / 2


def duration_ms(pcm: bytes) -> int:
    """Milliseconds of protocol audio in `pcm`."""
    return len(pcm) // BYTES_PER_MS
