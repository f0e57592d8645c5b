// Microphone capture on the audio thread: mono, resampled to 24 kHz here (whatever rate the
// device and AudioContext run at), cut into PCM16 frames of FRAME_MS and posted to the page with
// the buffer transferred, not copied. Each frame carries its level for the meter.
import { PROTOCOL_RATE, StreamResampler, floatToPcm16 } from "./resampler.js";

// 40 ms frames: within the protocol's recommended 20-40 ms, and half the messages (and
// upstream events) of 20 ms for the same audio, which matters on a busy gateway.
const FRAME_MS = 40;
const FRAME_SAMPLES = (PROTOCOL_RATE * FRAME_MS) / 1000;
// The flushed tail of a turn is padded with silence to this much: Koe refuses frames under 5 ms.
const MIN_TAIL_SAMPLES = (PROTOCOL_RATE * 10) / 1000;

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.resampler = new StreamResampler(sampleRate, PROTOCOL_RATE);
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
    this.sumSquares = 0;
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data.type === "flush") {
        // The end of a push-to-talk turn: send what is buffered now, then say so.
        this.push(this.resampler.flush());
        this.emit(true);
        this.port.postMessage({ type: "flushed", id: event.data.id });
      } else if (event.data.type === "close") {
        this.running = false;
      }
    };
  }

  process(inputs) {
    const input = inputs[0];
    if (input && input.length > 0) {
      let mono = input[0];
      if (input.length > 1) {
        // A stereo device: average the channels rather than drop one.
        mono = new Float32Array(input[0].length);
        for (const channel of input) {
          for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / input.length;
        }
      }
      this.push(this.resampler.process(mono));
    }
    return this.running;
  }

  push(samples) {
    let offset = 0;
    while (offset < samples.length) {
      const take = Math.min(FRAME_SAMPLES - this.filled, samples.length - offset);
      const part = samples.subarray(offset, offset + take);
      floatToPcm16(part, this.frame, this.filled);
      for (let i = 0; i < part.length; i++) this.sumSquares += part[i] * part[i];
      this.filled += take;
      offset += take;
      if (this.filled === FRAME_SAMPLES) this.emit(false);
    }
  }

  emit(partial) {
    if (this.filled === 0) return;
    // An even number of bytes always: whole PCM16 samples (the rest of the buffer is zeros).
    const length = Math.max(this.filled, MIN_TAIL_SAMPLES);
    const frame = partial ? this.frame.slice(0, length) : this.frame;
    const level = Math.sqrt(this.sumSquares / this.filled);
    this.port.postMessage({ type: "frame", pcm: frame.buffer, level }, [frame.buffer]);
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
    this.sumSquares = 0;
  }
}

registerProcessor("koe-capture", CaptureProcessor);
