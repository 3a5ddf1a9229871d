// Live updates from `GET /v1/events` (Server-Sent Events). EventSource cannot send a header, and the API takes keys
// only in headers (never in a URL, where logs and Referers would keep them), so the stream is read with fetch() and
// parsed here. Incident events carry an id (resumed with Last-Event-ID after a drop); `handling` events are live only.
// When the stream is refused (429: too many streams for this key or in total) the caller falls back to polling.
"use strict";

import { API_BASE, apiKey } from "./api.js";

const RETRY_MS = [1000, 2000, 5000, 10000];

/** Parse one SSE block ("event: x\nid: 3\ndata: {...}") into {type, id, data}; comments and pings give null. */
function parseBlock(block) {
  let type = "message";
  let id = null;
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") type = value;
    else if (field === "id") id = value;
    else if (field === "data") data.push(value);
  }
  return data.length ? { type, id, data: data.join("\n") } : null;
}

/** Start the stream: `onEvent(type, payload)` for every event, `onState("sse" | "poll" | "off")` when it changes.
 * Returns a function that stops it. */
export function startLive(onEvent, onState) {
  const abort = new AbortController();
  let lastId = null;
  let attempt = 0;

  async function readOnce() {
    const headers = { "X-API-Key": apiKey(), Accept: "text/event-stream" };
    if (lastId) headers["Last-Event-ID"] = lastId;
    const res = await fetch(new URL("v1/events", API_BASE), { headers, signal: abort.signal, cache: "no-store" });
    if (res.status === 401 || res.status === 403) return "denied";
    if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
    onState("sse");
    attempt = 0;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return "ended";
      buffer += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = parseBlock(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (!event) continue;
        if (event.id) lastId = event.id;
        try {
          onEvent(event.type, JSON.parse(event.data));
        } catch (err) {
          console.warn("bad event", err);
        }
      }
    }
  }

  (async () => {
    while (!abort.signal.aborted) {
      try {
        if ((await readOnce()) === "denied") {
          onState("poll");
          return;
        }
      } catch (err) {
        if (abort.signal.aborted) return;
      }
      onState("off");
      onEvent("reconnected", null); // what happened meanwhile (handling events are not replayed): reload
      await new Promise((r) => setTimeout(r, RETRY_MS[Math.min(attempt++, RETRY_MS.length - 1)]));
    }
  })();
  return () => abort.abort();
}
