// The voice socket to Koe (docs/voice-protocol.md): JSON events and binary audio both ways,
// reconnection with back-off when the connection drops, and the close codes turned into
// messages a person can act on.

// Close codes after which trying again at once cannot help, and the words (translated, from
// the page's labels) that say so.
const FINAL_CODES = [4401, 4403, 4429, 4502];
const RETRY_DELAYS_MS = [500, 1500, 4000];
// Audio the page holds while the socket opens: within the 2-second burst the server accepts at
// once (its rate limit), so that the held audio is not refused when it goes out.
const HELD_AUDIO_MS = 1500;
const BYTES_PER_MS = 48;

export class VoiceConnection extends EventTarget {
  // messages: {4401, 4403, 4429, 4502, tryAgainIn ("… {minutes} …"), lost}, in the page's language.
  constructor(url, messages) {
    super();
    this.url = url;
    this.messages = messages;
    this.socket = null;
    this.wanted = false; // the user wants a conversation: reconnect if it drops
    this.attempt = 0;
    this.held = []; // commands (strings) and audio (ArrayBuffers), in the order they were made
    this.heldBytes = 0;
    this.lastError = null;
    this.everOpened = false;
    this.greeting = null; // () => command sent first on every (re)open, e.g. the turn mode
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  connect() {
    this.wanted = true;
    if (this.socket && this.socket.readyState <= WebSocket.OPEN) return;
    const socket = new WebSocket(this.url);
    socket.binaryType = "arraybuffer";
    this.socket = socket;
    socket.onopen = () => {
      const reconnected = this.everOpened;
      this.everOpened = true;
      this.attempt = 0;
      // A new socket is a new conversation on the server: it must hear the mode again first.
      if (this.greeting) socket.send(JSON.stringify(this.greeting()));
      for (const data of this.held) socket.send(data);
      this.held = [];
      this.heldBytes = 0;
      this.dispatchEvent(new CustomEvent("open", { detail: { reconnected } }));
    };
    socket.onmessage = (message) => {
      if (typeof message.data === "string") {
        let event;
        try {
          event = JSON.parse(message.data);
        } catch {
          return;
        }
        if (event.type === "error") this.lastError = event;
        this.dispatchEvent(new CustomEvent("event", { detail: event }));
      } else {
        this.dispatchEvent(new CustomEvent("audio", { detail: message.data }));
      }
    };
    socket.onclose = (close) => this.closed(socket, close);
  }

  closed(socket, close) {
    if (socket !== this.socket) return;
    this.socket = null;
    const error = this.lastError;
    this.lastError = null;
    const final = FINAL_CODES.includes(close.code) ? this.messages[close.code] : null;
    if (final || !this.wanted) {
      this.wanted = false;
      this.everOpened = false;
      this.held = [];
      this.heldBytes = 0;
      let message = final || null;
      if (close.code === 4429 && error && error.retry_after) {
        const minutes = String(Math.ceil(error.retry_after / 60));
        message = `${final} ${this.messages.tryAgainIn.replace("{minutes}", minutes)}`;
      }
      this.dispatchEvent(
        new CustomEvent("closed", { detail: { code: close.code, message, final: Boolean(final) } }),
      );
      return;
    }
    // Dropped (network, server restart, too slow): try again a few times.
    if (this.attempt >= RETRY_DELAYS_MS.length) {
      this.wanted = false;
      this.everOpened = false;
      this.held = [];
      this.heldBytes = 0;
      this.dispatchEvent(
        new CustomEvent("closed", {
          detail: { code: close.code, message: this.messages.lost, final: true },
        }),
      );
      return;
    }
    const delay = RETRY_DELAYS_MS[this.attempt++];
    this.dispatchEvent(new CustomEvent("reconnecting", { detail: { delay } }));
    setTimeout(() => {
      if (this.wanted) this.connect();
    }, delay);
  }

  // Audio frames (ArrayBuffer of PCM16): sent now, or held briefly while the socket opens.
  sendAudio(buffer) {
    if (this.open) {
      this.socket.send(buffer);
      return;
    }
    if (!this.wanted) return;
    this.held.push(buffer);
    this.heldBytes += buffer.byteLength;
    // Too much audio: the oldest audio goes, never a held command (a typed question, a commit).
    while (this.heldBytes > HELD_AUDIO_MS * BYTES_PER_MS) {
      const index = this.held.findIndex((data) => typeof data !== "string");
      if (index < 0) break;
      this.heldBytes -= this.held[index].byteLength;
      this.held.splice(index, 1);
    }
  }

  // Commands (commit, clear, cancel, truncate, text, mode): sent now or once open.
  send(command) {
    const data = JSON.stringify(command);
    if (this.open) this.socket.send(data);
    else if (this.wanted) this.held.push(data);
  }

  close() {
    this.wanted = false;
    this.everOpened = false;
    this.held = [];
    this.heldBytes = 0;
    if (this.socket) this.socket.close(1000, "done");
  }
}

export function voiceSocketUrl(path) {
  const url = new URL(path, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}
