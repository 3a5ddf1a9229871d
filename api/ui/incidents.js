// The incident list: filters, cursor pagination, keyboard handling (j/k, x, a/r/f, v, n/p), bulk acknowledge, live
// updates (live.js: SSE, else polling) and the clip player (<video> on the signed link: the browser streams it with
// Range requests; nothing is downloaded into a blob).
"use strict";

import { $, api, clearErrorFrom, el, ids, pageLink, sameServer, showError, apiKey } from "./api.js";
import { browserZone, fmtTime, handlingName, ruleName, severityName, statusName, t } from "./i18n.js";

const ACTIONS = ["ack", "resolve", "false-positive"];
const KEYS = { a: "ack", r: "resolve", f: "false-positive" };
const RANGES_MS = { "1d": 86400e3, "7d": 7 * 86400e3, "30d": 30 * 86400e3 };
export const PAGE_SIZE = 20;

const inc = {
  items: [], cursors: [null], page: 0, next: null, sig: "", selected: new Set(), focus: null, newWaiting: 0,
  polling: false, again: false, timer: null, cameras: new Map(), siteZones: new Map(), active: true,
};

/** The cameras (names, time zones) and which time zone each site's times are shown in: its first camera's schedule
 * time zone, else the browser's. */
export function setCameras(cameras) {
  inc.cameras = new Map(cameras.map((c) => [c.id, c]));
  inc.siteZones = new Map();
  for (const c of cameras) {
    const zone = c.schedule?.timezone;
    if (zone && !inc.siteZones.has(c.site)) inc.siteZones.set(c.site, zone);
  }
}

/** The time zone of `site`'s times; for all sites the one zone every camera shares, if they do; else the browser's. */
export function siteZone(site) {
  const zones = new Set(inc.siteZones.values());
  const common = zones.size === 1 ? [...zones][0] : null;
  return (site ? inc.siteZones.get(site) : common) || browserZone();
}
const zoneOf = (i) => inc.cameras.get(i.camera_id)?.schedule?.timezone || siteZone(i.site);

export function setActive(active) {
  inc.active = active;
  if (active) refreshIncidents();
}

function query() {
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const [name, id] of [["site", "f-site"], ["camera", "f-camera"], ["rule", "f-rule"], ["status", "f-status"]]) {
    if ($(id).value) q.set(name, $(id).value);
  }
  const range = RANGES_MS[$("f-range").value];
  if (range) q.set("since", new Date(Date.now() - range).toISOString());
  const cursor = inc.cursors[inc.page];
  if (cursor) q.set("cursor", cursor);
  return q;
}

/** Back to the first page (filters changed). */
export function resetPages() {
  Object.assign(inc, { cursors: [null], page: 0, sig: "", newWaiting: 0 });
  inc.selected.clear();
  refreshIncidents();
}

export async function refreshIncidents() {
  if (!apiKey() || !inc.active || document.hidden) return;
  if (inc.polling) {
    inc.again = true; // one request at a time; refresh once more when it is back
    return;
  }
  inc.polling = true;
  try {
    const page = await api(`v1/incidents?${query()}`);
    inc.items = page.items;
    inc.next = page.next_cursor;
    const sig = JSON.stringify(page.items.map((i) => [i.id, i.last_seq, i.status, i.handling, !!i.snapshot_url]));
    if (sig !== inc.sig) {
      inc.sig = sig;
      render();
    }
    if (inc.page === 0) inc.newWaiting = 0;
    renderStatus();
    clearErrorFrom("poll");
  } catch (err) {
    showError(err, "poll");
  } finally {
    inc.polling = false;
    if (inc.again) {
      inc.again = false;
      refreshIncidents();
    }
  }
}

function renderStatus() {
  const time = new Date().toLocaleTimeString(document.documentElement.lang);
  $("inc-status").textContent = `${t("inc.shown", { n: inc.items.length, page: inc.page + 1 })} · ${t("inc.updated", { time })}`;
  $("inc-prev").disabled = inc.page === 0;
  $("inc-next").disabled = !inc.next;
  $("inc-new").hidden = !inc.newWaiting;
  $("inc-new").textContent = t("inc.new_waiting", { n: inc.newWaiting });
  $("bulk-ack").textContent = t("act.bulk_ack", { n: inc.selected.size });
  $("bulk-ack").disabled = !inc.selected.size;
}

function badge(kind, value, text) {
  const b = el("span", { className: `badge ${value}`, textContent: text });
  b.dataset[kind] = value;
  return b;
}

function button(label, onclick, data = {}) {
  const b = el("button", { type: "button", textContent: label, onclick, tabIndex: -1 });
  Object.assign(b.dataset, data);
  return b;
}

function row(i) {
  const camera = inc.cameras.get(i.camera_id);
  const img = el("img", { alt: t(i.snapshot_url ? "snapshot" : "snapshot.none"), loading: "lazy" });
  if (i.snapshot_url) {
    img.onerror = () => (img.alt = t("snapshot.broken"));
    img.src = sameServer(i.snapshot_url);
  }
  const check = el("input", { type: "checkbox", className: "sel", checked: inc.selected.has(i.id), tabIndex: -1 });
  check.setAttribute("aria-label", t("col.select"));
  check.onchange = () => select(i.id, check.checked);
  const actions = el("div", { className: "actions" });
  for (const action of ACTIONS) actions.append(button(t(`act.${action}`), () => act(i.id, action), { action }));
  if (i.clip_url) actions.append(button(t("act.clip"), () => openPlayer(i), { clip: "1" }));
  const page = pageLink(i);
  if (page) actions.append(button(t("act.page"), () => window.open(page, "_blank"), { page }));
  const rule = el("div", { textContent: ruleName(i.rule), title: i.rule });
  const tr = el(
    "tr",
    { tabIndex: -1, className: i.id === inc.focus ? "focused" : "" },
    el("td", {}, check),
    el("td", {}, img),
    el("td", {}, camera?.name || i.camera_id, el("div", { className: "muted", textContent: i.site })),
    el("td", {}, rule, el("div", { className: "muted", textContent: i.zone ?? "" })),
    el("td", { className: "when", textContent: fmtTime(i.started_at, zoneOf(i)) }),
    el("td", {}, badge("status", i.status, statusName(i.status)), " ",
      badge("handling", i.handling, handlingName(i.handling)), " ",
      badge("severity", i.severity, severityName(i.severity))),
    el("td", {}, actions),
  );
  Object.assign(tr.dataset, { incident: i.id, handling: i.handling, rule: i.rule });
  tr.onclick = (ev) => {
    if (!ev.target.closest("button, input")) focusRow(i.id);
  };
  return tr;
}

function render() {
  const hadFocus = $("inc-rows").contains(document.activeElement);
  const rows = inc.items.map(row);
  $("inc-rows").replaceChildren(...rows);
  $("inc-empty").hidden = rows.length > 0;
  $("sel-all").checked = rows.length > 0 && inc.items.every((i) => inc.selected.has(i.id));
  if (hadFocus && inc.focus) focusRow(inc.focus);
  renderStatus();
}

/** Re-render with the current language (the rows' names and times). */
export function rerender() {
  if (inc.items.length) render();
  else renderStatus();
}

function select(id, on) {
  if (on) inc.selected.add(id);
  else inc.selected.delete(id);
  const tr = document.querySelector(`tr[data-incident="${CSS.escape(id)}"]`);
  if (tr) tr.querySelector("input.sel").checked = on;
  renderStatus();
}

function focusRow(id) {
  inc.focus = id;
  for (const tr of $("inc-rows").children) {
    const on = tr.dataset.incident === id;
    tr.classList.toggle("focused", on);
    if (on) {
      tr.focus({ preventScroll: true });
      tr.scrollIntoView({ block: "nearest" });
    }
  }
}

function move(delta) {
  if (!inc.items.length) return;
  const at = inc.items.findIndex((i) => i.id === inc.focus);
  const next = at < 0 ? 0 : Math.min(inc.items.length - 1, Math.max(0, at + delta));
  focusRow(inc.items[next].id);
}

function handlingBody() {
  const body = {};
  const actor = $("actor").value.trim();
  const note = $("note").value.trim();
  if (actor) body.actor = actor;
  if (note) body.note = note;
  return body;
}

/** The row shows `handling` (from our own action's answer or another client's, through SSE), without a reload. */
function showHandling(id, handling) {
  const item = inc.items.find((i) => i.id === id);
  if (item) item.handling = handling;
  const tr = document.querySelector(`tr[data-incident="${CSS.escape(id)}"]`);
  if (!tr) return;
  tr.dataset.handling = handling;
  tr.querySelector("[data-handling]").replaceWith(badge("handling", handling, handlingName(handling)));
  inc.sig = ""; // the next refresh compares afresh
}

async function act(id, action) {
  try {
    const detail = await api(`v1/incidents/${ids(id)}/${action}`, { method: "POST", body: handlingBody() });
    $("note").value = "";
    showError(null);
    showHandling(id, detail.handling);
    if ($("f-status").value) refreshIncidents(); // it may have left the filtered list
  } catch (err) {
    showError(err);
  }
}

async function bulkAck() {
  const chosen = inc.items.filter((i) => inc.selected.has(i.id)).map((i) => i.id);
  const body = handlingBody();
  let ok = 0;
  const failed = [];
  for (const id of chosen) { // one action each through the handling API (its audit trail, its rules)
    try {
      const detail = await api(`v1/incidents/${ids(id)}/ack`, { method: "POST", body });
      showHandling(id, detail.handling);
      ok += 1;
      select(id, false);
    } catch (err) {
      failed.push(err.status || "error");
    }
  }
  $("inc-msg").textContent = failed.length
    ? t("inc.bulk_done", { ok, failed: failed.length, reasons: [...new Set(failed)].join(", ") })
    : t("inc.bulk_ok", { ok });
  refreshIncidents();
}

function goPage(delta) {
  if (delta > 0 && !inc.next) return;
  if (delta < 0 && inc.page === 0) return;
  if (delta > 0) inc.cursors[inc.page + 1] = inc.next;
  inc.page += delta;
  inc.sig = "";
  inc.focus = null;
  refreshIncidents();
}

// ------------------------------------------------------------------------------------------------------ player
async function openPlayer(i) {
  const video = $("player-video");
  $("player-title").textContent = `${ruleName(i.rule)} · ${inc.cameras.get(i.camera_id)?.name || i.camera_id} · ${fmtTime(i.started_at, zoneOf(i))}`;
  $("player-clips").replaceChildren();
  video.src = sameServer(i.clip_url);
  video.dataset.incident = i.id;
  if (!$("player").open) $("player").showModal();
  try {
    const { clips } = await api(`v1/incidents/${ids(i.id)}`);
    if (clips.length > 1) {
      const play = (c) => () => {
        video.src = sameServer(c.url);
        video.play().catch(() => {});
      };
      $("player-clips").replaceChildren(
        ...clips.map((c) => button(t("player.clip", { i: c.index + 1, n: clips.length }), play(c), { clipIndex: c.index })),
      );
    }
  } catch (err) {
    showError(err);
  }
}

function closePlayer() {
  const video = $("player-video");
  video.pause();
  video.removeAttribute("src");
  video.load();
  if ($("player").open) $("player").close();
}

// ---------------------------------------------------------------------------------------------- live + keyboard
/** An event of live.js: handling changes update the row in place; incident events refresh the page (debounced). */
export function onLiveEvent(type, data) {
  if (type === "handling") {
    showHandling(data.id, data.handling);
    if ($("f-status").value) scheduleRefresh();
  } else if (type === "opened" && inc.page > 0) {
    inc.newWaiting += 1;
    renderStatus();
  } else {
    scheduleRefresh();
  }
}

function scheduleRefresh() {
  clearTimeout(inc.timer);
  inc.timer = setTimeout(refreshIncidents, 250);
}

function onKey(ev) {
  if (!inc.active || ev.ctrlKey || ev.metaKey || ev.altKey || $("player").open) return;
  if (ev.target.closest?.("input, select, textarea")) return;
  const focused = inc.items.find((i) => i.id === inc.focus);
  const key = ev.key;
  if (key === "j" || key === "ArrowDown") move(1);
  else if (key === "k" || key === "ArrowUp") move(-1);
  else if (key === "n") goPage(1);
  else if (key === "p") goPage(-1);
  else if (key === "x" && focused) select(focused.id, !inc.selected.has(focused.id));
  else if (KEYS[key] && focused) act(focused.id, KEYS[key]);
  else if (key === "v" && focused?.clip_url) openPlayer(focused);
  else return;
  ev.preventDefault();
}

export function wireIncidents() {
  for (const id of ["f-site", "f-camera", "f-rule", "f-status", "f-range"]) $(id).onchange = resetPages;
  $("filters").onsubmit = (ev) => ev.preventDefault();
  $("inc-prev").onclick = () => goPage(-1);
  $("inc-next").onclick = () => goPage(1);
  $("inc-new").onclick = resetPages;
  $("bulk-ack").onclick = bulkAck;
  $("sel-all").onchange = () => {
    for (const i of inc.items) select(i.id, $("sel-all").checked);
  };
  $("player-close").onclick = closePlayer;
  $("player").addEventListener("close", closePlayer);
  document.addEventListener("keydown", onKey);
}
