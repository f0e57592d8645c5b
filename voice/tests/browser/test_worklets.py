"""The voice page's audio code in Chromium's own Web Audio engine: the resampler's accuracy,
the capture worklet's frames and the playback worklet's timing, rendered offline (as fast as
the machine goes, sample-exact)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def page(live_koe, browser_with_microphone) -> Page:
    page = browser_with_microphone(None).new_page()
    page.goto(live_koe.url + "/accounts/login/")  # any page of Koe: the scripts are same-origin
    return page


RESAMPLE = """
async ([inRate, outRate, freq, block]) => {
  const { StreamResampler } = await import("/static/voice/resampler.js");
  const resampler = new StreamResampler(inRate, outRate);
  const total = inRate;  // one second
  const out = [];
  for (let start = 0; start < total; start += block) {
    const part = new Float32Array(Math.min(block, total - start));
    for (let i = 0; i < part.length; i++) {
      part[i] = 0.5 * Math.sin(2 * Math.PI * freq * (start + i) / inRate);
    }
    out.push(...resampler.process(part));
  }
  out.push(...resampler.flush());
  // Compare the middle half with the ideal tone at the output rate.
  let signal = 0, error = 0, power = 0;
  const from = Math.floor(out.length / 4), to = Math.floor(3 * out.length / 4);
  for (let n = from; n < to; n++) {
    const ideal = 0.5 * Math.sin(2 * Math.PI * freq * n / outRate);
    signal += ideal * ideal;
    error += (out[n] - ideal) ** 2;
    power += out[n] * out[n];
  }
  return {
    length: out.length,
    snrDb: 10 * Math.log10(signal / Math.max(error, 1e-20)),
    rmsDb: 10 * Math.log10(Math.max(power, 1e-20) / (to - from)),
  };
}
"""


@pytest.mark.parametrize(
    ("in_rate", "out_rate", "block"),
    [(44_100, 24_000, 128), (48_000, 24_000, 128), (24_000, 48_000, 2400), (24_000, 44_100, 2400)],
)
def test_the_resampler_keeps_time_and_tone(page, in_rate, out_rate, block):
    result: dict[str, Any] = page.evaluate(RESAMPLE, [in_rate, out_rate, 1000, block])
    # One second in is one second out, to the sample, whatever the block size...
    assert abs(result["length"] - out_rate) <= 1
    # ...and a speech-band tone comes out as the same tone (error 60 dB below it).
    assert result["snrDb"] > 60


def test_downsampling_filters_out_what_24_khz_cannot_carry(page):
    # A 15 kHz tone would fold back to 9 kHz at 24 kHz; the filter removes it instead.
    result: dict[str, Any] = page.evaluate(RESAMPLE, [48_000, 24_000, 15_000, 128])
    tone_db = 10 * __import__("math").log10(0.5**2 / 2)
    assert result["rmsDb"] < tone_db - 50


CAPTURE = """
async () => {
  const rate = 44100;
  const context = new OfflineAudioContext(1, rate * 2, rate);
  await context.audioWorklet.addModule("/static/voice/capture-worklet.js");
  const tone = new OscillatorNode(context, { frequency: 440 });
  const gain = new GainNode(context, { gain: 0.5 });
  const capture = new AudioWorkletNode(context, "koe-capture", {
    numberOfInputs: 1, numberOfOutputs: 0,
  });
  tone.connect(gain).connect(capture);
  tone.start();
  const frames = [];
  capture.port.onmessage = (event) => {
    if (event.data.type === "frame") {
      const pcm = new Int16Array(event.data.pcm);
      let peak = 0;
      for (const v of pcm) peak = Math.max(peak, Math.abs(v));
      frames.push({ bytes: event.data.pcm.byteLength, level: event.data.level, peak });
    }
  };
  await context.startRendering();
  await new Promise((resolve) => setTimeout(resolve, 300));
  return frames;
}
"""


def test_the_capture_worklet_sends_40_ms_pcm16_frames_at_24_khz(page):
    frames: list[dict[str, Any]] = page.evaluate(CAPTURE)
    # Two seconds at 44.1 kHz become 50 frames of 40 ms at 24 kHz (960 samples, 1,920 bytes).
    assert len(frames) in (49, 50)
    assert {f["bytes"] for f in frames} == {1920}
    steady = frames[2:]
    # A 0.5 sine: RMS 0.354, peak 0.5 of full scale, as PCM16.
    assert all(0.33 < f["level"] < 0.37 for f in steady)
    assert all(15_500 < f["peak"] < 17_000 for f in steady)


PLAYBACK = """
async ([seconds, stopAt]) => {
  const rate = 48000;
  const context = new OfflineAudioContext(1, rate * (seconds + 1), rate);
  await context.audioWorklet.addModule("/static/voice/playback-worklet.js");
  const node = new AudioWorkletNode(context, "koe-playback", {
    numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
  });
  node.connect(context.destination);
  const messages = [];
  let stopped = null;
  const pongs = new Map();
  node.port.onmessage = (event) => {
    if (event.data.type === "pong") return pongs.get(event.data.id)();
    if (event.data.type === "stats") return;
    messages.push(event.data);
    if (event.data.type === "stopped") stopped();
  };
  // Resolves once the worklet has handled every message posted before it.
  const synced = () => new Promise((resolve) => {
    const id = pongs.size + 1;
    pongs.set(id, resolve);
    node.port.postMessage({ type: "ping", id });
  });
  const settle = () => new Promise((resolve) => setTimeout(resolve, 200));
  // Feed the answer (0.5 sine at 440 Hz, 24 kHz PCM16, 100 ms chunks) before time starts.
  context.suspend(0).then(async () => {
    for (let chunk = 0; chunk < seconds * 10; chunk++) {
      const pcm = new Int16Array(2400);
      for (let i = 0; i < pcm.length; i++) {
        pcm[i] = Math.round(16384 * Math.sin(2 * Math.PI * 440 * (chunk * 2400 + i) / 24000));
      }
      node.port.postMessage({ type: "audio", itemId: "k_answer", pcm: pcm.buffer }, [pcm.buffer]);
    }
    node.port.postMessage({ type: "end", itemId: "k_answer" });
    await synced();
    context.resume();
  });
  if (stopAt !== null) {
    context.suspend(stopAt).then(async () => {
      const done = new Promise((resolve) => { stopped = resolve; });
      node.port.postMessage({ type: "stop" });
      await done;
      context.resume();
    });
  }
  const rendered = (await context.startRendering()).getChannelData(0);
  await settle();
  let first = -1, last = -1;
  for (let i = 0; i < rendered.length; i++) {
    if (Math.abs(rendered[i]) > 1e-3) { if (first < 0) first = i; last = i; }
  }
  return { messages, firstMs: first * 1000 / rate, lastMs: last * 1000 / rate };
}
"""


# 25 s is longer than the 20 s ring: the answer arrives all at once (as the offline engine's do),
# waits in the overflow and goes round the ring.
@pytest.mark.parametrize("seconds", [2, 25])
def test_the_playback_worklet_plays_an_answer_to_its_very_end(page, seconds):
    result: dict[str, Any] = page.evaluate(PLAYBACK, [seconds, None])
    kinds = [m["type"] for m in result["messages"]]
    assert kinds == ["started", "drained"]
    drained = result["messages"][1]
    assert drained["itemId"] == "k_answer"
    end_ms = seconds * 1000
    assert abs(drained["playedMs"] - end_ms) <= 2  # every sample, none clipped at the end
    # Sound from the start to the end of the answer, then silence.
    assert result["firstMs"] < 5
    assert end_ms - 10 < result["lastMs"] < end_ms + 5


def test_the_playback_worklet_stops_at_once_and_says_how_much_was_heard(page):
    result: dict[str, Any] = page.evaluate(PLAYBACK, [3, 1.0])
    stopped = next(m for m in result["messages"] if m["type"] == "stopped")
    assert stopped["itemId"] == "k_answer"
    # Stopped at 1.0 s of rendering: about a second was heard (within a render quantum).
    assert 990 <= stopped["playedMs"] <= 1010
    assert "drained" not in [m["type"] for m in result["messages"]]
    # Nothing plays after the stop.
    assert result["lastMs"] < 1010


STARVED = """
async () => {
  const rate = 48000;
  const context = new OfflineAudioContext(1, rate * 2.5, rate);
  await context.audioWorklet.addModule("/static/voice/playback-worklet.js");
  const node = new AudioWorkletNode(context, "koe-playback", {
    numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
  });
  node.connect(context.destination);
  const messages = [];
  let underruns = 0;
  const pongs = new Map();
  node.port.onmessage = (event) => {
    if (event.data.type === "pong") pongs.get(event.data.id)();
    else if (event.data.type === "stats") underruns = event.data.underruns;
    else messages.push(event.data);
  };
  const synced = () => new Promise((resolve) => {
    const id = pongs.size + 1;
    pongs.set(id, resolve);
    node.port.postMessage({ type: "ping", id });
  });
  const settle = () => new Promise((resolve) => setTimeout(resolve, 200));
  const half = (from) => {
    const pcm = new Int16Array(12000);
    for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(16384 * Math.sin(i / 5 + from));
    return pcm.buffer;
  };
  // Half a second of the answer, then nothing until 1.0 s (the network stalls), then the rest.
  context.suspend(0).then(async () => {
    const pcm = half(0);
    node.port.postMessage({ type: "audio", itemId: "k_answer", pcm }, [pcm]);
    await synced();
    context.resume();
  });
  context.suspend(1.0).then(async () => {
    const pcm = half(1);
    node.port.postMessage({ type: "audio", itemId: "k_answer", pcm }, [pcm]);
    node.port.postMessage({ type: "end", itemId: "k_answer" });
    await synced();
    context.resume();
  });
  await context.startRendering();
  await settle();
  return { messages, underruns };
}
"""


def test_the_playback_worklet_counts_a_stall_and_still_plays_everything(page):
    result: dict[str, Any] = page.evaluate(STARVED)
    assert result["underruns"] == 1
    assert [m["type"] for m in result["messages"]] == ["started", "drained"]
    assert abs(result["messages"][1]["playedMs"] - 1000) <= 2
