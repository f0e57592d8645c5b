// Live progress bars in the knowledge admin: while a document is queued or being indexed,
// ask the server for its status every two seconds and redraw its cell. No inline script,
// so the page keeps its strict Content-Security-Policy.
"use strict";

(function () {
  const POLL_MS = 2000;
  const UNFINISHED = new Set(["queued", "processing"]);

  function unfinishedCells() {
    return Array.from(document.querySelectorAll(".koe-status[data-document]")).filter(
      (cell) => UNFINISHED.has(cell.dataset.status),
    );
  }

  function redraw(cell, state) {
    cell.dataset.status = state.status;
    cell.replaceChildren();
    if (UNFINISHED.has(state.status)) {
      const bar = document.createElement("progress");
      bar.max = 100;
      bar.value = state.progress;
      const pct = document.createElement("span");
      pct.className = "koe-pct";
      pct.textContent = `${state.progress}%`;
      cell.append(`${state.label} `, bar, " ", pct);
    } else if (state.status === "failed" || state.status === "stalled") {
      const label = document.createElement("strong");
      label.className = "koe-failed";
      label.textContent = state.label;
      const error = document.createElement("span");
      error.className = "koe-error";
      error.textContent = state.error;
      cell.append(label, " ", error);
    } else {
      cell.append(state.label);
    }
  }

  async function poll() {
    const cells = unfinishedCells();
    if (cells.length === 0) return;
    const url = new URL(cells[0].dataset.progressUrl, window.location.href);
    for (const cell of cells) url.searchParams.append("id", cell.dataset.document);
    try {
      const response = await fetch(url, { credentials: "same-origin" });
      if (response.ok) {
        const states = await response.json();
        for (const cell of cells) {
          const state = states[cell.dataset.document];
          if (state) redraw(cell, state);
        }
      }
    } catch (error) {
      // A missed poll is harmless: the next one catches up.
    }
    window.setTimeout(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => window.setTimeout(poll, POLL_MS));
})();
