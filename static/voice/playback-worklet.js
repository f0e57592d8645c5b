// The assistant's voice on the audio thread: a ring buffer fed with PCM16 24 kHz from the page,
// resampled to the device rate, started after a prebuffer, drained to the very end of each
// answer, and stopped at once on barge-in with the milliseconds actually played.
//
// Messages in:  {type: "audio", itemId, pcm: ArrayBuffer}  (transferred)
//               {type: "end", itemId}    no more audio for that item: play it to the end
//               {type: "stop"}           barge-in: silence now
//               {type: "ping", id}       answered with {type: "pong", id} once all before it is done
// Messages out: {type: "started", itemId}             the first sample of an item is playing
//               {type: "drained", itemId, playedMs}   an item played to its end
//               {type: "stopped", itemId, playedMs}   stop: how much of the item was heard
//               {type: "stats", underruns, playedMs, bufferedMs}   a few times a second
import { PROTOCOL_RATE, StreamResampler, pcm16ToFloat } from "./resampler.js";

const PREBUFFER_MS = 100;
const RING_SECONDS = 20;
const STATS_EVERY_MS = 250;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ring = new Float32Array(Math.ceil(sampleRate * RING_SECONDS));
    this.read = 0;
    this.available = 0;
    this.overflow = []; // blocks waiting for room in the ring (answers arrive faster than real time)
    this.resampler = new StreamResampler(PROTOCOL_RATE, sampleRate);
    // Items in the order they play; each knows how many of its samples are still queued.
    this.items = [];
    this.playing = false;
    this.prebuffer = Math.round((sampleRate * PREBUFFER_MS) / 1000);
    this.underruns = 0;
    this.sinceStats = 0;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    if (message.type === "audio") {
      let item = this.items[this.items.length - 1];
      if (!item || item.id !== message.itemId || item.ended) {
        if (item && !item.ended) this.endItem(item); // a new item closes the previous one
        item = { id: message.itemId, queued: 0, played: 0, ended: false, started: false };
        this.items.push(item);
      }
      this.enqueue(item, this.resampler.process(pcm16ToFloat(new Int16Array(message.pcm))));
    } else if (message.type === "end") {
      const item = this.items.find((i) => i.id === message.itemId && !i.ended);
      if (item) this.endItem(item);
    } else if (message.type === "ping") {
      this.port.postMessage({ type: "pong", id: message.id });
    } else if (message.type === "stop") {
      const current = this.items[0];
      this.port.postMessage({
        type: "stopped",
        itemId: current ? current.id : null,
        playedMs: current ? this.ms(current.played) : 0,
      });
      this.items = [];
      this.overflow = [];
      this.available = 0;
      this.playing = false;
      this.resampler.reset();
    }
  }

  endItem(item) {
    this.enqueue(item, this.resampler.flush());
    item.ended = true;
  }

  enqueue(item, samples) {
    if (samples.length === 0) return;
    item.queued += samples.length;
    if (this.overflow.length > 0 || samples.length > this.ring.length - this.available) {
      this.overflow.push(samples);
      return;
    }
    this.write(samples);
  }

  write(samples) {
    const size = this.ring.length;
    const start = (this.read + this.available) % size;
    const first = Math.min(samples.length, size - start);
    this.ring.set(samples.subarray(0, first), start);
    if (first < samples.length) this.ring.set(samples.subarray(first), 0);
    this.available += samples.length;
  }

  refill() {
    while (this.overflow.length > 0 && this.overflow[0].length <= this.ring.length - this.available) {
      this.write(this.overflow.shift());
    }
  }

  ms(samples) {
    return Math.round((samples * 1000) / sampleRate);
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    out.fill(0);
    this.refill();
    const item = this.items[0];
    if (item) {
      if (!this.playing) {
        // Start after the prebuffer, or at once when the whole (short) answer is here.
        if (this.available >= this.prebuffer || (item.ended && item.queued === this.available)) {
          this.playing = true;
        }
      }
      if (this.playing) this.play(out);
    }
    this.sinceStats += out.length;
    if (this.sinceStats >= (sampleRate * STATS_EVERY_MS) / 1000) {
      this.sinceStats = 0;
      const current = this.items[0];
      this.port.postMessage({
        type: "stats",
        underruns: this.underruns,
        playedMs: current ? this.ms(current.played) : 0,
        bufferedMs: this.ms(this.available),
      });
    }
    return true;
  }

  play(out) {
    let written = 0;
    while (written < out.length && this.items.length > 0) {
      const item = this.items[0];
      if (!item.started) {
        item.started = true;
        this.port.postMessage({ type: "started", itemId: item.id });
      }
      if (this.available < out.length - written) this.refill();
      const take = Math.min(out.length - written, item.queued, this.available);
      const size = this.ring.length;
      for (let i = 0; i < take; i++) out[written + i] = this.ring[(this.read + i) % size];
      this.read = (this.read + take) % size;
      this.available -= take;
      item.queued -= take;
      item.played += take;
      written += take;
      if (item.queued === 0 && item.ended) {
        this.port.postMessage({ type: "drained", itemId: item.id, playedMs: this.ms(item.played) });
        this.items.shift();
        // The next item (if any) gets its own prebuffer.
        this.playing = false;
        return;
      }
      if (written < out.length && this.available === 0) {
        // Starved mid-answer (silence goes out): the network or the server fell behind.
        // Count it and prebuffer again rather than stutter sample by sample.
        this.underruns += 1;
        this.playing = false;
        return;
      }
    }
  }
}

registerProcessor("koe-playback", PlaybackProcessor);
