// The live transcript: one entry per turn, placed by previous_item_id (a user's words can be
// recognised after the answer has started), words appearing as they are recognised or spoken,
// and citation chips under the answers. Text only goes in through textContent.

export class Transcript {
  constructor(list, labels) {
    this.list = list;
    this.labels = labels;
    this.entries = new Map();
  }

  // A turn exists; put it after the turn it follows, or at the end.
  place(itemId, role, previousId) {
    let entry = this.entries.get(itemId);
    if (!entry) entry = this.create(itemId, role);
    const previous = previousId ? this.entries.get(previousId) : null;
    if (previous && previous.node.nextSibling !== entry.node) {
      previous.node.after(entry.node);
    }
    return entry;
  }

  create(itemId, role) {
    const node = document.createElement("li");
    node.className = `turn ${role}`;
    node.dataset.itemId = itemId;
    node.dataset.role = role;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role === "user" ? this.labels.user : this.labels.assistant;
    const text = document.createElement("p");
    text.className = "text";
    node.append(who, text);
    this.list.append(node);
    const entry = { node, text, role, done: false };
    this.entries.set(itemId, entry);
    return entry;
  }

  entry(itemId, role) {
    return this.entries.get(itemId) || this.create(itemId, role);
  }

  delta(itemId, role, delta) {
    const entry = this.entry(itemId, role);
    if (entry.done) return;
    entry.text.textContent += delta;
    entry.node.classList.add("partial");
    // Screen readers wait for the finished turn rather than read every word fragment.
    entry.node.setAttribute("aria-busy", "true");
  }

  done(itemId, role, text) {
    const entry = this.entry(itemId, role);
    entry.done = true;
    entry.text.textContent = text;
    entry.node.classList.remove("partial");
    entry.node.removeAttribute("aria-busy");
  }

  failed(itemId) {
    const entry = this.entry(itemId, "user");
    entry.done = true;
    entry.text.textContent = this.labels.notUnderstood;
    entry.node.classList.add("failed");
  }

  // The assistant was interrupted: show where it stopped talking.
  cut(itemId) {
    const entry = this.entries.get(itemId);
    if (entry) entry.node.classList.add("interrupted");
  }

  citations(itemId, citations) {
    const entry = this.entry(itemId, "assistant");
    let chips = entry.node.querySelector(".citations");
    if (!chips) {
      chips = document.createElement("ul");
      chips.className = "citations";
      chips.setAttribute("aria-label", this.labels.sources);
      entry.node.append(chips);
    }
    for (const citation of citations) {
      const chip = document.createElement("li");
      const link = document.createElement("a");
      link.className = "chip";
      // Only Koe's own pages: a link that resolves to another origin is not made.
      if (typeof citation.url === "string" && citation.url) {
        const url = new URL(citation.url, window.location.origin);
        if (url.origin === window.location.origin) link.href = url.pathname + url.search;
      }
      link.target = "_blank";
      link.rel = "noopener";
      // The location usually starts with the title ("Leave > Annual leave"): say it once.
      const where = citation.location || "";
      link.textContent = where.startsWith(citation.title) ? where : [citation.title, where].filter(Boolean).join(" · ");
      if (citation.passage) link.title = citation.passage;
      chip.append(link);
      chips.append(chip);
    }
  }

  // A typed question shows at once, before the server confirms it.
  typed(text) {
    this.typedCount = (this.typedCount || 0) + 1;
    const itemId = `local-${this.typedCount}`;
    const entry = this.create(itemId, "user");
    entry.text.textContent = text;
    entry.done = true;
    entry.node.classList.add("typed");
    return itemId;
  }

  // The server's id for a typed question: the shown entry keeps its place and takes the id
  // (an empty entry the server's item.created made meanwhile goes).
  adopt(localId, itemId) {
    const entry = this.entries.get(localId);
    if (!entry) return false;
    const placeholder = this.entries.get(itemId);
    if (placeholder && placeholder !== entry) placeholder.node.remove();
    this.entries.delete(localId);
    this.entries.set(itemId, entry);
    entry.node.dataset.itemId = itemId;
    return true;
  }
}
