// Streaming sample-rate conversion for the audio worklets (capture: device rate -> 24 kHz;
// playback: 24 kHz -> device rate). Browsers do not all honour an AudioContext's requested rate
// (Firefox refuses to connect a microphone at another rate), so Koe converts itself.
//
// Band-limited interpolation: each output sample is a windowed-sinc weighted sum of the input
// around its position. The kernel is tabulated once (TABLE_STEPS points per input sample) and
// read with linear interpolation, so the audio thread does no trigonometry.

export const PROTOCOL_RATE = 24000;

const ZERO_CROSSINGS = 8; // kernel half-width in zero crossings: about 80 dB stop band
const TABLE_STEPS = 256; // kernel samples per unit of (cutoff-scaled) time
const ROLLOFF = 0.92; // the pass band ends at 92 % of the lower Nyquist frequency

function kernelTable() {
  const size = ZERO_CROSSINGS * TABLE_STEPS + 2;
  const table = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const x = i / TABLE_STEPS; // in zero crossings
    const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    const u = Math.min(1, x / ZERO_CROSSINGS);
    const blackman = 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
    table[i] = sinc * blackman;
  }
  return table;
}

const TABLE = kernelTable();

export class StreamResampler {
  constructor(inRate, outRate) {
    this.inRate = inRate;
    this.outRate = outRate;
    this.passthrough = inRate === outRate;
    this.step = inRate / outRate; // input samples per output sample
    // Cutoff relative to the input's Nyquist frequency: below the output's when downsampling.
    this.cutoff = Math.min(1, outRate / inRate) * ROLLOFF;
    this.reach = Math.ceil(ZERO_CROSSINGS / this.cutoff); // input samples each side
    this.history = new Float32Array(4096);
    this.reset();
  }

  reset() {
    // The first output lines up with the first input; the samples before it are silence.
    this.length = this.reach;
    this.history.fill(0, 0, this.reach);
    this.position = this.reach; // position of the next output sample, in history samples
  }

  // Convert a block; returns a new Float32Array (possibly empty) at the output rate.
  process(input) {
    if (this.passthrough) return Float32Array.from(input);
    this._append(input);
    return this._drain(this.length - this.reach);
  }

  // The remaining output once the input has ended (the kernel's last reach of samples).
  flush() {
    if (this.passthrough) return new Float32Array(0);
    const end = this.length;
    this._append(new Float32Array(this.reach + 1));
    const out = this._drain(end);
    this.reset();
    return out;
  }

  _append(input) {
    const needed = this.length + input.length;
    if (needed > this.history.length) {
      let size = this.history.length;
      while (size < needed) size *= 2;
      const grown = new Float32Array(size);
      grown.set(this.history.subarray(0, this.length));
      this.history = grown;
    }
    this.history.set(input, this.length);
    this.length += input.length;
  }

  // Produce every output sample whose position is before `limit` (and whose kernel is covered).
  _drain(limit) {
    const count = Math.max(0, Math.ceil((limit - this.position) / this.step));
    const out = new Float32Array(count);
    const { history, reach, cutoff, step } = this;
    const scale = cutoff * TABLE_STEPS;
    let position = this.position;
    for (let n = 0; n < count; n++) {
      const center = Math.floor(position);
      let sum = 0;
      for (let k = center - reach + 1; k <= center + reach; k++) {
        const t = Math.abs(position - k) * scale;
        const i = t | 0;
        if (i >= TABLE.length - 1) continue;
        const frac = t - i;
        sum += history[k] * (TABLE[i] + (TABLE[i + 1] - TABLE[i]) * frac);
      }
      out[n] = sum * cutoff;
      position += step;
    }
    this.position = position;
    // Keep only the history the next outputs can still reach.
    const keepFrom = Math.max(0, Math.floor(this.position) - reach);
    if (keepFrom > 0) {
      this.history.copyWithin(0, keepFrom, this.length);
      this.length -= keepFrom;
      this.position -= keepFrom;
    }
    return out;
  }
}

// Float samples in [-1, 1] to PCM16 little-endian (the protocol's format).
export function floatToPcm16(samples, target, offset) {
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    target[offset + i] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
  }
}

export function pcm16ToFloat(pcm) {
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 32768;
  return out;
}
