// The voice page: wires the talk button, modes, microphone, socket, playback and transcript.
// The browser only sends audio and the few commands of docs/voice-protocol.md; everything the
// model is told stays on the server.
import { VoiceAudio, microphones } from "./audio.js";
import { VoiceConnection, voiceSocketUrl } from "./connection.js";
import { Transcript } from "./transcript.js";

const MIN_TURN_MS = 150; // a shorter push-to-talk press is a slip, not a question
const BYTES_PER_MS = 48;
const MIC_KEY = "koe.microphone";

function $(selector) {
  return document.querySelector(selector);
}

class VoicePage {
  constructor(root) {
    this.root = root;
    this.labels = JSON.parse($("#voice-labels").textContent);
    this.audio = new VoiceAudio();
    this.connection = new VoiceConnection(voiceSocketUrl(root.dataset.socket));
    this.transcript = new Transcript($("#transcript"), this.labels);
    this.mode = "hands_free";
    this.live = false; // hands-free listening, or a push-to-talk conversation, is on
    this.holding = false; // push-to-talk button held
    this.tail = false; // sending the flushed end of a push-to-talk turn
    this.turnBytes = 0;
    this.muted = false;
    this.serverStatus = "idle";
    this.pendingTyped = [];
    this.spokenTurns = 0; // spoken turns begun whose item has not been announced yet
    this.framesSent = 0;
    this.bind();
    this.render();
  }

  bind() {
    const talk = $("#talk");
    talk.addEventListener("click", () => {
      if (this.mode === "hands_free") this.toggleHandsFree();
    });
    talk.addEventListener("pointerdown", (e) => {
      if (this.mode !== "push_to_talk" || e.button !== 0) return;
      talk.setPointerCapture(e.pointerId);
      this.pressStart();
    });
    for (const kind of ["pointerup", "pointercancel"]) {
      talk.addEventListener(kind, () => this.pressEnd());
    }
    // Space (or Enter on the focused button) holds to talk, except while typing a question.
    document.addEventListener("keydown", (e) => {
      if (this.mode !== "push_to_talk" || e.repeat || !this.isTalkKey(e)) return;
      e.preventDefault();
      this.pressStart();
    });
    document.addEventListener("keyup", (e) => {
      if (this.mode !== "push_to_talk" || !this.isTalkKey(e)) return;
      e.preventDefault();
      this.pressEnd();
    });
    for (const radio of document.querySelectorAll("input[name=mode]")) {
      radio.addEventListener("change", () => this.setMode(radio.value));
    }
    $("#mute").addEventListener("click", () => this.toggleMute());
    $("#end").addEventListener("click", () => this.end());
    $("#microphone").addEventListener("change", (e) => this.chooseMicrophone(e.target.value));
    $("#ask").addEventListener("submit", (e) => {
      e.preventDefault();
      this.ask();
    });
    $("#banner-close").addEventListener("click", () => this.hideBanner());

    this.audio.addEventListener("frame", (e) => this.onFrame(e.detail));
    this.audio.addEventListener("stats", (e) => this.showStats(e.detail));
    this.audio.addEventListener("started", () => this.render());
    this.audio.addEventListener("drained", (e) => {
      $("#played").textContent = String(e.detail.playedMs);
      this.render();
    });
    this.connection.addEventListener("event", (e) => this.onEvent(e.detail));
    this.connection.addEventListener("audio", (e) => this.onAudio(e.detail));
    this.connection.addEventListener("open", (e) => this.onOpen(e.detail));
    this.connection.addEventListener("reconnecting", () => this.setStatus("reconnecting"));
    this.connection.addEventListener("closed", (e) => this.onClosed(e.detail));
    window.addEventListener("pagehide", () => this.connection.close());
  }

  isTalkKey(e) {
    if (e.code !== "Space") return false;
    const target = e.target;
    if (target === $("#talk") || !(target instanceof Element)) return true;
    // Space keeps its own meaning where one types or presses another control.
    const own = "input:not([type=radio]):not([type=checkbox]), textarea, select, button, a, [contenteditable]";
    return !target.closest(own);
  }

  // -- starting and ending ----------------------------------------------------------------------
  async openMicrophone() {
    if (this.audio.microphoneOpen) return true;
    try {
      const used = await this.audio.startMicrophone(localStorage.getItem(MIC_KEY) || undefined);
      await this.listMicrophones(used);
      this.applyMute();
      return true;
    } catch (error) {
      if (error && error.name === "OverconstrainedError") {
        localStorage.removeItem(MIC_KEY); // the remembered microphone is gone: use the default
        return this.openMicrophone();
      }
      this.showBanner(this.labels.noMicrophone, "error");
      return false;
    }
  }

  async toggleHandsFree() {
    if (this.live) {
      this.end();
      return;
    }
    await this.audio.ensureContext();
    if (!(await this.openMicrophone())) return;
    this.live = true;
    this.connect();
    this.render();
  }

  connect() {
    if (!this.connection.wanted) {
      this.connection.connect();
      this.connection.send({ type: "mode", mode: this.mode });
      this.setStatus("connecting");
    }
  }

  end() {
    this.live = false;
    this.holding = false;
    this.connection.close();
    this.audio.stopMicrophone();
    this.audio.stop();
    this.serverStatus = "idle";
    this.render();
  }

  setMode(mode) {
    this.mode = mode;
    this.holding = false;
    if (this.connection.wanted) this.connection.send({ type: "mode", mode });
    if (mode === "push_to_talk" && this.connection.wanted) this.live = true;
    this.render();
  }

  async chooseMicrophone(deviceId) {
    localStorage.setItem(MIC_KEY, deviceId);
    if (this.audio.microphoneOpen) {
      await this.audio.startMicrophone(deviceId);
      this.applyMute();
    }
  }

  async listMicrophones(selected) {
    const select = $("#microphone");
    const devices = await microphones();
    select.replaceChildren();
    devices.forEach((device, index) => {
      const option = document.createElement("option");
      option.value = device.deviceId;
      option.textContent = device.label || `${this.labels.microphone} ${index + 1}`;
      option.selected = device.deviceId === selected;
      select.append(option);
    });
    select.disabled = devices.length < 2;
  }

  toggleMute() {
    this.muted = !this.muted;
    this.applyMute();
    this.render();
  }

  applyMute() {
    const stream = this.audio.stream;
    if (stream) for (const track of stream.getAudioTracks()) track.enabled = !this.muted;
  }

  // -- push-to-talk -------------------------------------------------------------------------------
  async pressStart() {
    if (this.holding) return;
    this.holding = true;
    this.turnBytes = 0;
    this.render();
    await this.audio.ensureContext();
    if (!(await this.openMicrophone())) {
      this.holding = false;
      this.render();
      return;
    }
    this.live = true;
    this.connect();
    await this.bargeIn();
  }

  async pressEnd() {
    if (!this.holding) return;
    this.tail = true;
    await this.audio.flush();
    this.tail = false;
    this.holding = false;
    if (this.turnBytes < MIN_TURN_MS * BYTES_PER_MS) {
      this.connection.send({ type: "clear" });
      this.showBanner(this.labels.holdLonger, "notice");
    } else {
      this.spokenTurns += 1;
      this.connection.send({ type: "commit" });
    }
    this.render();
  }

  // -- audio out of the microphone ------------------------------------------------------------
  onFrame(frame) {
    this.showLevel(frame.level);
    const sending = this.mode === "hands_free" ? this.live && !this.muted : this.holding || this.tail;
    if (!sending || !this.connection.wanted) return;
    this.connection.sendAudio(frame.pcm);
    this.turnBytes += frame.pcm.byteLength;
    this.framesSent += 1;
  }

  // -- the user interrupts the assistant ----------------------------------------------------------
  async bargeIn() {
    if (this.serverStatus !== "listening" && this.mode === "push_to_talk") {
      // Without server turn detection nothing else stops an answer being generated.
      this.connection.send({ type: "cancel" });
    }
    const heard = await this.audio.stop();
    if (heard && heard.itemId) {
      this.transcript.cut(heard.itemId);
      this.connection.send({ type: "truncate", item_id: heard.itemId, played_ms: heard.playedMs });
      $("#played").textContent = String(heard.playedMs);
    }
    this.render();
  }

  // -- typed questions --------------------------------------------------------------------------
  async ask() {
    const input = $("#question");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    await this.audio.ensureContext(); // the answer is spoken too
    this.connect();
    await this.bargeIn();
    this.pendingTyped.push(this.transcript.typed(text));
    this.connection.send({ type: "text", text });
  }

  // -- events from Koe ----------------------------------------------------------------------------
  onOpen({ reconnected }) {
    if (reconnected) this.showBanner(this.labels.reconnected, "notice");
    this.render();
  }

  onEvent(event) {
    switch (event.type) {
      case "ready":
        this.serverStatus = "listening";
        $("#conversation-id").textContent = event.conversation_id;
        break;
      case "status":
        this.serverStatus = event.status;
        break;
      case "speech.started":
        this.spokenTurns += 1;
        this.bargeIn();
        break;
      case "item.created":
        if (event.role === "user") {
          // A user item is a spoken turn if one was begun, else the oldest typed question.
          if (this.spokenTurns > 0) this.spokenTurns -= 1;
          else if (this.pendingTyped.length > 0) {
            this.transcript.adopt(this.pendingTyped.shift(), event.item_id);
          }
        }
        this.transcript.place(event.item_id, event.role, event.previous_item_id);
        break;
      case "transcript.delta":
        this.transcript.delta(event.item_id, event.role, event.delta);
        break;
      case "transcript.done":
        this.transcript.done(event.item_id, event.role, event.text);
        break;
      case "transcript.failed":
        this.transcript.failed(event.item_id);
        break;
      case "citations":
        this.transcript.citations(event.item_id, event.citations);
        break;
      case "audio.start":
        this.playingItem = event.item_id;
        break;
      case "audio.done":
        this.audio.endOfItem(event.item_id);
        break;
      case "notice":
        if (event.notice === "reconnected") this.showBanner(this.labels.reconnected, "notice");
        break;
      case "error":
        this.showBanner(event.message || this.labels.somethingWrong, "error");
        break;
      default:
        break;
    }
    this.render();
  }

  onAudio(buffer) {
    if (this.playingItem) this.audio.play(this.playingItem, buffer);
  }

  onClosed({ message, code }) {
    const wasLive = this.live;
    this.live = false;
    this.holding = false;
    this.serverStatus = "idle";
    this.audio.stopMicrophone();
    if (code === 4401) {
      window.location.assign(this.root.dataset.login);
      return;
    }
    if (message) this.showBanner(message, "error");
    else if (wasLive && code !== 1000) this.showBanner(this.labels.connectionLost, "error");
    this.render();
  }

  // -- what the page shows ------------------------------------------------------------------------
  setStatus(status) {
    this.serverStatus = status;
    this.render();
  }

  render() {
    const talk = $("#talk");
    const connected = this.connection.wanted;
    let status = this.serverStatus;
    if (this.audio.speaking && status !== "searching") status = "speaking";
    if (this.holding) status = "hearing";
    if (status === "listening" && this.mode === "push_to_talk") status = "ready";
    if (status === "listening" && this.muted) status = "muted";
    this.root.dataset.status = status;
    $("#status").textContent = this.labels.status[status] || "";
    $("#cue").hidden = status !== "searching";
    if (this.mode === "hands_free") {
      talk.textContent = this.live ? this.labels.stop : this.labels.start;
      talk.setAttribute("aria-pressed", String(this.live));
    } else {
      talk.textContent = this.holding ? this.labels.release : this.labels.hold;
      talk.setAttribute("aria-pressed", String(this.holding));
    }
    const mute = $("#mute");
    mute.textContent = this.muted ? this.labels.unmute : this.labels.mute;
    mute.setAttribute("aria-pressed", String(this.muted));
    $("#end").hidden = !connected;
  }

  showLevel(rms) {
    // The meter reads in decibels: -60 dB (silence) to 0 dB (full scale).
    const db = rms > 0 ? 20 * Math.log10(rms) : -60;
    $("#level").value = Math.max(0, Math.min(1, (db + 60) / 60));
  }

  showStats(stats) {
    $("#underruns").textContent = String(stats.underruns);
    $("#buffered").textContent = String(stats.bufferedMs);
    $("#frames").textContent = String(this.framesSent);
  }

  showBanner(message, kind) {
    const banner = $("#banner");
    banner.dataset.kind = kind;
    // Errors interrupt (role=alert); notices are announced politely.
    banner.setAttribute("role", kind === "error" ? "alert" : "status");
    $("#banner-text").textContent = message;
    banner.hidden = false;
  }

  hideBanner() {
    $("#banner").hidden = true;
  }
}

const root = document.getElementById("voice");
if (root) new VoicePage(root);
