// Audio for the voice page: one AudioContext, the capture worklet fed by the microphone and the
// playback worklet feeding the speakers. Standard Web Audio only (Chromium, Edge, Firefox,
// Safari); the worklets do their own resampling, so the context runs at the device's rate.

const WORKLET_BASE = new URL("./", import.meta.url);

export class VoiceAudio extends EventTarget {
  constructor() {
    super();
    this.context = null;
    this.stream = null;
    this.source = null;
    this.capture = null;
    this.playback = null;
    this.flushes = new Map();
    this.flushCount = 0;
    this.stats = { underruns: 0, playedMs: 0, bufferedMs: 0 };
    this.current = null; // the assistant item whose audio is playing or queued
  }

  // Must run inside a user gesture the first time (autoplay rules).
  async ensureContext() {
    if (!this.context) {
      const Context = window.AudioContext || window.webkitAudioContext;
      this.context = new Context({ latencyHint: "interactive" });
      await Promise.all([
        this.context.audioWorklet.addModule(new URL("capture-worklet.js", WORKLET_BASE)),
        this.context.audioWorklet.addModule(new URL("playback-worklet.js", WORKLET_BASE)),
      ]);
      this.playback = new AudioWorkletNode(this.context, "koe-playback", {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [1],
      });
      this.playback.port.onmessage = (event) => this.onPlayback(event.data);
      this.playback.connect(this.context.destination);
    }
    if (this.context.state !== "running") await this.context.resume();
    return this.context;
  }

  // Open the microphone (or another one) and start capturing into frames.
  async startMicrophone(deviceId) {
    await this.ensureContext();
    this.stopMicrophone();
    const audio = {
      // The assistant must not hear itself through the speakers.
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
      channelCount: 1,
    };
    if (deviceId) audio.deviceId = { exact: deviceId };
    this.stream = await navigator.mediaDevices.getUserMedia({ audio });
    this.source = this.context.createMediaStreamSource(this.stream);
    this.capture = new AudioWorkletNode(this.context, "koe-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCountMode: "explicit",
      channelCount: 1,
    });
    this.capture.port.onmessage = (event) => this.onCapture(event.data);
    this.source.connect(this.capture);
    const track = this.stream.getAudioTracks()[0];
    return track ? track.getSettings().deviceId || "" : "";
  }

  stopMicrophone() {
    if (this.capture) {
      this.capture.port.postMessage({ type: "close" });
      this.capture.disconnect();
      this.capture = null;
    }
    if (this.source) {
      this.source.disconnect();
      this.source = null;
    }
    if (this.stream) {
      for (const track of this.stream.getTracks()) track.stop();
      this.stream = null;
    }
    for (const resolve of this.flushes.values()) resolve();
    this.flushes.clear();
  }

  get microphoneOpen() {
    return this.stream !== null;
  }

  // Send the captured tail now (end of a push-to-talk turn); resolves once it was posted.
  flush() {
    if (!this.capture) return Promise.resolve();
    const id = ++this.flushCount;
    return new Promise((resolve) => {
      this.flushes.set(id, resolve);
      this.capture.port.postMessage({ type: "flush", id });
    });
  }

  onCapture(message) {
    if (message.type === "frame") {
      this.dispatchEvent(new CustomEvent("frame", { detail: message }));
    } else if (message.type === "flushed") {
      const resolve = this.flushes.get(message.id);
      this.flushes.delete(message.id);
      if (resolve) resolve();
    }
  }

  // -- playback ---------------------------------------------------------------------------------
  play(itemId, pcm) {
    if (!this.playback) return;
    this.current = itemId;
    this.playback.port.postMessage({ type: "audio", itemId, pcm }, [pcm]);
  }

  endOfItem(itemId) {
    if (this.playback) this.playback.port.postMessage({ type: "end", itemId });
  }

  // Barge-in: silence at once; resolves with {itemId, playedMs} of what was actually heard.
  stop() {
    if (!this.playback || this.current === null) return Promise.resolve(null);
    this.current = null;
    return new Promise((resolve) => {
      this.pendingStop = resolve;
      this.playback.port.postMessage({ type: "stop" });
    });
  }

  onPlayback(message) {
    if (message.type === "stats") {
      this.stats = { underruns: message.underruns, playedMs: message.playedMs, bufferedMs: message.bufferedMs };
      this.dispatchEvent(new CustomEvent("stats", { detail: this.stats }));
      return;
    }
    if (message.type === "stopped" && this.pendingStop) {
      const resolve = this.pendingStop;
      this.pendingStop = null;
      resolve(message.itemId ? { itemId: message.itemId, playedMs: message.playedMs } : null);
    }
    if (message.type === "drained" && this.current === message.itemId) this.current = null;
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  get speaking() {
    return this.current !== null;
  }

  async close() {
    this.stopMicrophone();
    if (this.context) {
      await this.context.close();
      this.context = null;
      this.playback = null;
    }
  }
}

// The microphones the user may choose from (labels appear once access was granted).
export async function microphones() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return [];
  const devices = await navigator.mediaDevices.enumerateDevices();
  return devices.filter((d) => d.kind === "audioinput");
}
