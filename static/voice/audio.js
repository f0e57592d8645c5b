// Audio for the voice page: one AudioContext, the capture worklet fed by the microphone and the
// playback worklet feeding the speakers. Standard Web Audio only (Chromium, Edge, Firefox,
// Safari); the worklets do their own resampling, so the context runs at the device's rate.

const CAPTURE_URL = new URL("capture-worklet.js", import.meta.url);
const PLAYBACK_URL = new URL("playback-worklet.js", import.meta.url);

function audioContextClass() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context || typeof AudioWorkletNode === "undefined") {
    throw new Error("This browser cannot run Koe's audio (no AudioWorklet).");
  }
  return Context;
}

export class VoiceAudio extends EventTarget {
  constructor() {
    super();
    this.context = null;
    this.contextReady = null; // one creation at a time
    this.captureContext = null; // only when the microphone cannot join the main context
    this.stream = null;
    this.source = null;
    this.capture = null;
    this.playback = null;
    this.micOpening = null; // one microphone opening at a time
    this.flushes = new Map();
    this.flushCount = 0;
    this.stops = []; // resolvers of stop(), answered in order by the worklet
    this.stats = { underruns: 0, playedMs: 0, bufferedMs: 0 };
    this.current = null; // the assistant item whose audio is playing or queued
  }

  // The first call must come from a user gesture (autoplay rules); later calls share it.
  ensureContext() {
    if (!this.contextReady) {
      this.contextReady = this.createContext().catch((error) => {
        this.contextReady = null;
        throw error;
      });
    }
    return this.contextReady.then(async (context) => {
      if (context.state !== "running") await context.resume();
      return context;
    });
  }

  async createContext() {
    const Context = audioContextClass();
    const context = new Context({ latencyHint: "interactive" });
    await Promise.all([
      context.audioWorklet.addModule(CAPTURE_URL),
      context.audioWorklet.addModule(PLAYBACK_URL),
    ]);
    this.playback = new AudioWorkletNode(context, "koe-playback", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    this.playback.port.onmessage = (event) => this.onPlayback(event.data);
    this.playback.connect(context.destination);
    this.context = context;
    return context;
  }

  // Open the microphone unless it is open (or opening) already.
  openMicrophone(deviceId) {
    if (this.stream) return Promise.resolve();
    if (!this.micOpening) {
      this.micOpening = this.startMicrophone(deviceId).finally(() => {
        this.micOpening = null;
      });
    }
    return this.micOpening;
  }

  // Use another microphone (after any opening in progress).
  async switchMicrophone(deviceId) {
    if (this.micOpening) await this.micOpening.catch(() => {});
    await this.startMicrophone(deviceId);
  }

  async startMicrophone(deviceId) {
    const context = await this.ensureContext();
    const audio = {
      // The assistant must not hear itself through the speakers.
      echoCancellation: true,
      noiseSuppression: true,
      autoGainControl: true,
      channelCount: 1,
    };
    if (deviceId) audio.deviceId = { exact: deviceId };
    const stream = await navigator.mediaDevices.getUserMedia({ audio });
    this.stopMicrophone(); // the old one goes only once the new one is there
    this.stream = stream;
    let captureContext = context;
    try {
      this.source = context.createMediaStreamSource(stream);
    } catch (error) {
      // Firefox cannot connect a microphone that runs at another rate than the context:
      // capture in a context at the microphone's own rate (the worklet resamples from any).
      const rate = stream.getAudioTracks()[0]?.getSettings().sampleRate;
      if (!rate) throw error;
      captureContext = new (audioContextClass())({ sampleRate: rate });
      await captureContext.audioWorklet.addModule(CAPTURE_URL);
      this.captureContext = captureContext;
      this.source = captureContext.createMediaStreamSource(stream);
    }
    this.capture = new AudioWorkletNode(captureContext, "koe-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCountMode: "explicit",
      channelCount: 1,
    });
    this.capture.port.onmessage = (event) => this.onCapture(event.data);
    this.source.connect(this.capture);
    const track = stream.getAudioTracks()[0];
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
    if (this.captureContext) {
      this.captureContext.close();
      this.captureContext = null;
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

  // Barge-in: silence at once; resolves with {itemId, playedMs} of what was actually heard,
  // or null when nothing was playing. Calls are answered in order, each one.
  stop() {
    if (!this.playback) return Promise.resolve(null);
    this.current = null;
    return new Promise((resolve) => {
      this.stops.push(resolve);
      this.playback.port.postMessage({ type: "stop" });
    });
  }

  // What reached the speakers lags what the worklet rendered by the output latency.
  heardMs(renderedMs) {
    const latency = this.context && this.context.outputLatency ? this.context.outputLatency : 0;
    return Math.max(0, Math.round(renderedMs - latency * 1000));
  }

  onPlayback(message) {
    if (message.type === "stats") {
      this.stats = {
        underruns: message.underruns,
        playedMs: message.playedMs,
        bufferedMs: message.bufferedMs,
      };
      this.dispatchEvent(new CustomEvent("stats", { detail: this.stats }));
      return;
    }
    if (message.type === "stopped") {
      const resolve = this.stops.shift();
      if (resolve) {
        resolve(message.itemId ? { itemId: message.itemId, playedMs: this.heardMs(message.playedMs) } : null);
      }
    }
    if (message.type === "drained" && this.current === message.itemId) this.current = null;
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  get speaking() {
    return this.current !== null;
  }
}

// The microphones the user may choose from (labels appear once access was granted).
export async function microphones() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return [];
  const devices = await navigator.mediaDevices.enumerateDevices();
  return devices.filter((d) => d.kind === "audioinput");
}
