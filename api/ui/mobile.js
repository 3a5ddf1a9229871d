// The mobile incident page (/ui/i/{id}, rendered by api/routers/mobile.py): local times, and the handling buttons
// when this tab holds the web UI's API key (sessionStorage, as app.js keeps it) or the page was opened with a key.
"use strict";

const KEY_STORE = "safewatch.key";
const body = document.body;
const key = sessionStorage.getItem(KEY_STORE);

for (const t of document.querySelectorAll("time[datetime]")) {
  const when = new Date(t.getAttribute("datetime"));
  if (!Number.isNaN(when.getTime())) t.textContent = when.toLocaleString();
}

async function handle(action) {
  const message = document.getElementById("message");
  const headers = { "Content-Type": "application/json", ...(key ? { "X-API-Key": key } : {}) };
  const path = `/v1/incidents/${encodeURIComponent(body.dataset.incident)}/${action}`;
  try {
    const res = await fetch(path, { method: "POST", headers, body: "{}" });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`${res.status}: ${data.detail ?? res.statusText}`);
    document.getElementById("handling").textContent = data.handling;
    message.textContent = `OK: ${data.handling}`;
  } catch (err) {
    message.textContent = String(err.message ?? err);
  }
}

if (key || body.dataset.keyed === "1") {
  const actions = document.getElementById("actions");
  actions.hidden = false;
  for (const button of actions.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => handle(button.dataset.action));
  }
}
