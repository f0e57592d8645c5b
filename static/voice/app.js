// The voice page: wires the talk button, modes, microphone, socket, playback and transcript.
// The browser only sends audio and the few commands of docs/voice-protocol.md; everything the
// model is told stays on the server.
import { VoiceAudio, microphones } from "./audio.js";
import { VoiceConnection, voiceSocketUrl } from "./connection.js";
import { Transcript } from "./transcript.js";

const MIN_TURN_MS = 150; // a shorter push-to-talk press is a slip, not a question
const BYTES_PER_MS = 48;
const MIC_KEY = "koe.microphone";
const NOTICE_MS = 8000;
const ANSWERING = new Set(["thinking", "searching", "speaking"]);

function $(selector) {
  return document.querySelector(selector);
}

class VoicePage {
  constructor(root) {
    this.root = root;
    this.labels = JSON.parse($("#voice-labels").textContent);
    this.audio = new VoiceAudio();
    this.connection = new VoiceConnection(voiceSocketUrl(root.dataset.socket), this.labels.connection);
    this.connection.greeting = () => ({ type: "mode", mode: this.mode });
    this.transcript = new Transcript($("#transcript"), this.labels);
    this.mode = "hands_free";
    this.listening = false; // hands-free: the microphone streams to Koe
    this.holding = false; // push-to-talk: the button (or space bar) is down
    this.press = 0; // which press is current, to tell a stale one after an await
    this.releasing = null; // the end of the last press, while its tail is being sent
    this.tail = false; // sending the flushed end of a push-to-talk turn
    this.turnBytes = 0;
    this.muted = false;
    this.serverStatus = "idle";
    this.playingItem = null; // the assistant item the binary frames now belong to
    this.pendingTyped = []; // typed questions shown but not confirmed: {localId, text}
    this.framesSent = 0;
    this.shownStatus = null;
    this.noticeTimer = 0;
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
      if (this.mode !== "push_to_talk" || !this.isTalkKey(e)) return;
      e.preventDefault();
      if (!e.repeat) this.pressStart();
    });
    document.addEventListener("keyup", (e) => {
      if (this.mode !== "push_to_talk" || !this.isTalkKey(e)) return;
      e.preventDefault();
      this.pressEnd();
    });
    // A press whose key-up never comes (the window lost focus) ends now, not later.
    window.addEventListener("blur", () => this.pressEnd());
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) this.pressEnd();
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
    $("#alert-close").addEventListener("click", () => this.clearAlert());

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
    this.connection.addEventListener("reconnecting", () => this.onDropped());
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
  async prepareAudio() {
    try {
      await this.audio.ensureContext();
      return true;
    } catch {
      this.showAlert(this.labels.noAudio);
      return false;
    }
  }

  async openMicrophone() {
    try {
      const used = await this.audio.openMicrophone(localStorage.getItem(MIC_KEY) || undefined);
      await this.listMicrophones(used);
      this.applyMute();
      return true;
    } catch (error) {
      if (error && error.name === "OverconstrainedError" && localStorage.getItem(MIC_KEY)) {
        localStorage.removeItem(MIC_KEY); // the remembered microphone is gone: use the default
        return this.openMicrophone();
      }
      this.showAlert(this.labels.noMicrophone);
      return false;
    }
  }

  async toggleHandsFree() {
    if (this.listening) {
      this.end();
      return;
    }
    if (!(await this.prepareAudio()) || !(await this.openMicrophone())) return;
    if (this.mode !== "hands_free") return; // switched meanwhile
    this.listening = true;
    this.connect();
    this.render();
  }

  connect() {
    if (!this.connection.wanted) {
      this.connection.connect();
      this.serverStatus = "connecting";
    }
  }

  end() {
    this.listening = false;
    this.holding = false;
    this.press += 1;
    this.connection.close();
    this.audio.stopMicrophone();
    this.stopPlayback();
    this.serverStatus = "idle";
    this.render();
  }

  async setMode(mode) {
    if (this.holding) await this.pressEnd(); // a turn in progress is sent, not lost
    this.mode = mode;
    // Hands-free streams whenever the microphone is open; push-to-talk only while held.
    this.listening = mode === "hands_free" && this.connection.wanted && this.audio.microphoneOpen;
    if (this.connection.wanted) this.connection.send({ type: "mode", mode });
    this.render();
  }

  async chooseMicrophone(deviceId) {
    localStorage.setItem(MIC_KEY, deviceId);
    if (!this.audio.microphoneOpen) return;
    try {
      await this.audio.switchMicrophone(deviceId);
      this.applyMute();
    } catch {
      this.showAlert(this.labels.noMicrophone);
      this.end();
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
    if (this.releasing) await this.releasing; // the last turn's tail and commit go first
    const press = ++this.press;
    this.holding = true;
    this.turnBytes = 0;
    this.render();
    if (!(await this.prepareAudio()) || !(await this.openMicrophone())) {
      if (press === this.press) this.holding = false;
      this.render();
      return;
    }
    if (press !== this.press || !this.holding) return; // let go (or ended) meanwhile
    this.connect();
    await this.bargeIn();
  }

  pressEnd() {
    if (!this.holding) return this.releasing || Promise.resolve();
    this.holding = false;
    this.releasing = this.sendTurn().finally(() => {
      this.releasing = null;
    });
    return this.releasing;
  }

  async sendTurn() {
    this.tail = true;
    await this.audio.flush();
    this.tail = false;
    if (this.turnBytes < MIN_TURN_MS * BYTES_PER_MS) {
      if (this.connection.wanted) this.connection.send({ type: "clear" });
      this.showNotice(this.labels.holdLonger);
    } else {
      this.connection.send({ type: "commit" });
    }
    this.render();
  }

  // -- audio out of the microphone ------------------------------------------------------------
  onFrame(frame) {
    this.showLevel(frame.level);
    const sending =
      this.mode === "hands_free" ? this.listening && !this.muted : this.holding || this.tail;
    if (!sending || !this.connection.wanted) return;
    this.connection.sendAudio(frame.pcm);
    this.turnBytes += frame.pcm.byteLength;
    this.framesSent += 1;
  }

  // -- the user interrupts the assistant ----------------------------------------------------------
  stopPlayback() {
    // Frames of the cut answer may still be on their way: from now on they are dropped.
    this.playingItem = null;
    return this.audio.stop();
  }

  async bargeIn() {
    if (ANSWERING.has(this.serverStatus) || this.audio.speaking) {
      // The server's turn detection stops an answer when the user speaks hands-free; a press or
      // a typed question has nobody else to stop it.
      this.connection.send({ type: "cancel" });
    }
    const heard = await this.stopPlayback();
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
    await this.prepareAudio(); // the answer is spoken too; without audio it is still written
    this.connect();
    if (this.connection.everOpened) await this.bargeIn();
    this.pendingTyped.push({ localId: this.transcript.typed(text), text });
    this.connection.send({ type: "text", text });
  }

  // -- events from Koe ----------------------------------------------------------------------------
  onOpen({ reconnected }) {
    if (reconnected) {
      // A new socket is a new conversation on the server: earlier turns are not remembered.
      this.showNotice(this.labels.newConversation);
    }
    this.render();
  }

  onDropped() {
    this.serverStatus = "reconnecting";
    this.stopPlayback();
    this.render();
  }

  onEvent(event) {
    switch (event.type) {
      case "ready":
        this.serverStatus = "listening";
        $("#conversation-id").textContent = event.conversation_id;
        this.clearAlert();
        break;
      case "status":
        this.serverStatus = event.status;
        break;
      case "speech.started":
        this.bargeIn();
        break;
      case "item.created":
        this.transcript.place(event.item_id, event.role, event.previous_item_id);
        break;
      case "transcript.delta":
        this.transcript.delta(event.item_id, event.role, event.delta);
        break;
      case "transcript.done":
        if (event.role === "user" && this.adoptTyped(event)) break;
        this.transcript.done(event.item_id, event.role, event.text);
        // An answer cut off with the model's connection: Koe asks the question again.
        if (event.interrupted) this.transcript.cut(event.item_id);
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
        if (event.item_id === this.playingItem) this.audio.endOfItem(event.item_id);
        break;
      case "notice":
        if (event.notice === "reconnected") this.showNotice(this.labels.reconnected);
        break;
      case "error":
        this.showAlert(event.message || this.labels.somethingWrong);
        break;
      default:
        break;
    }
    this.render();
  }

  // A typed question comes back with its own words: the entry shown at once takes its id.
  adoptTyped(event) {
    const index = this.pendingTyped.findIndex((p) => p.text === event.text.trim());
    if (index < 0) return false;
    const [pending] = this.pendingTyped.splice(index, 1);
    return this.transcript.adopt(pending.localId, event.item_id);
  }

  onAudio(buffer) {
    if (this.playingItem) this.audio.play(this.playingItem, buffer);
  }

  onClosed({ message, code }) {
    const wasOn = this.listening || this.holding;
    this.listening = false;
    this.holding = false;
    this.press += 1;
    this.serverStatus = "idle";
    this.pendingTyped = [];
    this.audio.stopMicrophone();
    this.stopPlayback();
    if (code === 4401) {
      window.location.assign(this.root.dataset.login);
      return;
    }
    if (message) this.showAlert(message);
    else if (wasOn && code !== 1000) this.showAlert(this.labels.connectionLost);
    this.render();
  }

  // -- what the page shows ------------------------------------------------------------------------
  render() {
    const talk = $("#talk");
    let status = this.serverStatus;
    if (this.audio.speaking && status !== "searching") status = "speaking";
    if (this.holding) status = "hearing";
    if (status === "listening" && this.mode === "push_to_talk") status = "ready";
    if (status === "listening" && !this.listening) status = "ready_to_type";
    if (status === "listening" && this.muted) status = "muted";
    this.root.dataset.status = status;
    if (status !== this.shownStatus) {
      // Written only when it changes: it is a live region, and the talk button's description.
      this.shownStatus = status;
      $("#status").textContent = this.labels.status[status] || "";
    }
    $("#cue").hidden = status !== "searching";
    if (this.mode === "hands_free") {
      talk.textContent = this.listening ? this.labels.stop : this.labels.start;
      talk.setAttribute("aria-pressed", String(this.listening));
    } else {
      talk.textContent = this.holding ? this.labels.release : this.labels.hold;
      talk.setAttribute("aria-pressed", String(this.holding));
    }
    const mute = $("#mute");
    mute.textContent = this.muted ? this.labels.unmute : this.labels.mute;
    mute.setAttribute("aria-pressed", String(this.muted));
    $("#end").hidden = !this.connection.wanted;
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

  // Errors go to an alert region, news to a status region; both stay in the page (empty when
  // quiet) so that screen readers announce what is written into them.
  showAlert(message) {
    $("#alert").textContent = message;
    $("#alert-close").hidden = false;
  }

  clearAlert() {
    $("#alert").textContent = "";
    $("#alert-close").hidden = true;
  }

  showNotice(message) {
    $("#notice").textContent = message;
    clearTimeout(this.noticeTimer);
    this.noticeTimer = setTimeout(() => {
      $("#notice").textContent = "";
    }, NOTICE_MS);
  }
}

const root = document.getElementById("voice");
if (root) new VoicePage(root);
