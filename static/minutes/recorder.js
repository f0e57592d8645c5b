// The live minutes of a meeting: the microphone's audio goes to Koe's minutes socket
// (docs/voice-protocol.md, "Minutes"), and the segments come back as they are transcribed.
// Pause and resume stop and restart listening; stop saves and opens the minutes.

import { VoiceAudio } from "../voice/audio.js";
import { VoiceConnection, voiceSocketUrl } from "../voice/connection.js";

const $ = (selector) => document.querySelector(selector);
const L = JSON.parse($("#minutes-labels").textContent);

function clock(ms) {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

class Recorder {
  constructor(root) {
    this.root = root;
    this.audio = new VoiceAudio();
    this.connection = new VoiceConnection(voiceSocketUrl(root.dataset.socket), L.connection);
    this.recording = false;
    this.stopping = false;
    this.paused = false;
    this.heardMs = 0; // audio sent: the meeting clock, pauses not counted
    this.url = null;
    this.records = []; // minutes records this page started (a reconnect starts another)
    this.audio.addEventListener("frame", (e) => this.onFrame(e.detail));
    this.connection.addEventListener("event", (e) => this.onEvent(e.detail));
    this.connection.addEventListener("reconnecting", () => this.setStatus(L.status.reconnecting));
    this.connection.addEventListener("closed", (e) => this.onClosed(e.detail));
    $("#start").addEventListener("click", () => this.start());
    $("#pause").addEventListener("click", () => this.togglePause());
    $("#stop").addEventListener("click", () => this.stop());
  }

  async start() {
    this.showAlert("");
    try {
      await this.audio.ensureContext();
      await this.audio.openMicrophone();
    } catch {
      this.showAlert(L.noMicrophone);
      return;
    }
    this.recording = true;
    this.paused = false;
    this.connection.connect();
    this.setStatus(L.status.connecting);
    this.render();
  }

  togglePause() {
    this.paused = !this.paused;
    this.connection.send({ type: this.paused ? "pause" : "resume" });
    this.render();
  }

  stop() {
    this.recording = false;
    this.stopping = true;
    this.audio.stopMicrophone();
    if (this.connection.open) {
      this.connection.send({ type: "stop" });
      this.setStatus(L.status.saving);
    } else if (this.url) {
      window.location.assign(this.url); // the record is saved as far as it got
    }
    // No reconnection from here on: a new socket would start a new, empty record.
    this.connection.wanted = false;
    this.render();
  }

  onFrame(frame) {
    $("#level").value = frame.level || 0;
    if (!this.recording || this.paused || !this.connection.wanted) return;
    this.connection.sendAudio(frame.pcm);
    this.heardMs += frame.pcm.byteLength / 48;
    $("#elapsed").textContent = clock(this.heardMs);
  }

  onEvent(event) {
    switch (event.type) {
      case "ready":
        if (this.url && this.url !== event.url) this.showNotice(L.newRecord);
        this.url = event.url;
        this.records.push(event.url);
        this.setStatus(this.paused ? L.status.paused : L.status.listening);
        break;
      case "status":
        this.setStatus(L.status[event.status] || event.status);
        break;
      case "speech":
        this.root.dataset.speaking = event.speaking ? "yes" : "no";
        break;
      case "segment.delta":
        this.segment(event.segment_id, event.start_ms).text.textContent += event.delta;
        break;
      case "segment.done": {
        const seg = this.segment(event.segment_id, event.start_ms);
        seg.text.textContent = event.text;
        seg.item.classList.remove("partial");
        break;
      }
      case "segment.discarded":
        this.root.querySelector(`[data-segment="${this.records.length}-${event.segment_id}"]`)?.remove();
        break;
      case "notice":
        if (event.notice === "reconnected") this.showNotice(L.reconnected);
        break;
      case "stopped":
        window.location.assign(event.url);
        break;
      case "error":
        this.showAlert(event.message);
        break;
    }
  }

  // The list item of a segment, made on its first words.
  segment(id, startMs) {
    const key = `${this.records.length}-${id}`; // ids restart with each record
    let item = this.root.querySelector(`[data-segment="${key}"]`);
    if (!item) {
      item = document.createElement("li");
      item.className = "segment partial";
      item.dataset.segment = key;
      const at = document.createElement("span");
      at.className = "at";
      at.textContent = clock(startMs || 0);
      const text = document.createElement("p");
      text.className = "text";
      item.append(at, text);
      $("#segments").append(item);
    }
    return { item, text: item.querySelector(".text") };
  }

  onClosed(detail) {
    if (this.stopping && this.url) {
      window.location.assign(this.url); // stopped (or the socket ended while stopping)
      return;
    }
    this.recording = false;
    this.audio.stopMicrophone();
    if (detail.message) this.showAlert(detail.message);
    if (this.url && !detail.final) {
      this.setStatus(L.status.saved);
    } else {
      this.setStatus(L.status.idle);
    }
    this.render();
  }

  render() {
    $("#start").hidden = this.recording;
    $("#pause").hidden = !this.recording;
    $("#stop").hidden = !this.recording;
    $("#pause").textContent = this.paused ? L.resume : L.pause;
    $("#pause").setAttribute("aria-pressed", String(this.paused));
    this.root.dataset.status = this.recording ? (this.paused ? "paused" : "recording") : "idle";
  }

  setStatus(text) {
    $("#status").textContent = text;
  }

  showAlert(text) {
    $("#alert").textContent = text;
  }

  showNotice(text) {
    $("#notice").textContent = text;
  }
}

new Recorder($("#recorder"));
