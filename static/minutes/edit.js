// Editing minutes: pick a segment, press 1-9 to give it a speaker (or choose one), and correct
// its words in place. Each change is one edit kept beside the words as heard.

const $ = (selector) => document.querySelector(selector);
const list = $("#lines");
const speakers = JSON.parse($("#speakers").textContent);
// From the page's own form: the CSRF cookie is not readable by scripts (CSRF_COOKIE_HTTPONLY).
const csrf = document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";

async function save(item, change) {
  const url = list.dataset.edit.replace("SEGMENT", encodeURIComponent(item.dataset.segment));
  item.classList.add("saving");
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(change),
      credentials: "same-origin",
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    item.classList.toggle("edited", answer.edited);
    item.querySelector(".speaker").value = answer.speaker;
    item.dataset.saved = item.querySelector(".text").textContent = answer.text;
    item.removeAttribute("data-error");
  } catch (error) {
    item.dataset.error = String(error.message || error);
    item.title = item.dataset.error;
  } finally {
    item.classList.remove("saving");
  }
}

for (const item of list.querySelectorAll(".segment")) {
  const text = item.querySelector(".text");
  item.dataset.saved = text.textContent;
  item.querySelector(".speaker").addEventListener("change", (e) => {
    save(item, { speaker: e.target.value });
  });
  text.addEventListener("blur", () => {
    const words = text.textContent.trim();
    if (words && words !== item.dataset.saved) save(item, { text: words });
  });
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      text.blur();
    }
  });
  item.addEventListener("keydown", (e) => {
    // Digits assign speakers only while the segment itself, not its words, has the focus.
    if (e.target !== item || !/^[1-9]$/.test(e.key)) return;
    const name = speakers[Number(e.key) - 1];
    if (name !== undefined) {
      e.preventDefault();
      save(item, { speaker: name });
      (item.nextElementSibling || item).focus();
    }
  });
}
