"use strict";
// safewatch web UI: incident list + zone editor. Plain JS, no build step. The page holds no data: every call sends
// the API key the user typed in (sessionStorage, this tab only) as X-API-Key, so the server's roles apply unchanged.

const KEY_STORE = "safewatch.key";
const POLL_MS = 4000;
const KINDS = ["generic", "fire_exit", "indoor", "helmet_required", "forbidden"];
const COLORS = ["#e6553a", "#2f7dd1", "#2ca25f", "#d99a00", "#8e44ad", "#16a5a5"];
const ACTIONS = [["ack", "Ack"], ["resolve", "Resolve"], ["false-positive", "False positive"]];
const HINTS = { 401: "check the API key", 403: "this key's role is too low", 422: "invalid input" };
const API_BASE = new URL("../", location.href); // the page lives at <base>/ui/, the API at <base>/v1/
const NEAR_PX = 8;

const $ = (id) => document.getElementById(id);
const state = {
  cameras: [], tab: "incidents", incSig: "", errorFrom: null,
  polling: false, again: false, // incident polling: one request in flight, at most one queued
};
const ed = { camera: null, etag: null, zones: [], selected: -1, drawing: null, drag: null, image: null, dirty: false };
ed.token = 0; // the latest camera pick (openCamera)

/** A DOM element: `props` are assigned as properties (textContent, value, onclick…); children as nodes/text. */
function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// ---------------------------------------------------------------------------------------------------- API + errors
class ApiError extends Error {
  constructor(status, message, problems = []) {
    super(message);
    this.status = status;
    this.problems = problems;
  }
}

/** Problems of a 422: the cameras API sends [{path, message}], FastAPI's request validation [{loc, msg}]. */
function problemsOf(detail) {
  if (!Array.isArray(detail)) return [];
  return detail.map((p) => ({
    path: p.path ?? (p.loc || []).filter((part) => part !== "body").join("."),
    message: p.message ?? p.msg ?? JSON.stringify(p),
  }));
}

async function api(path, { method = "GET", body, headers = {}, raw = false } = {}) {
  const key = sessionStorage.getItem(KEY_STORE);
  if (!key) throw new ApiError(0, "enter an API key first");
  const init = { method, headers: { "X-API-Key": key, ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const res = await fetch(new URL(path, API_BASE), init);
  if (!res.ok) {
    const detail = await res.json().then((b) => b.detail ?? res.statusText, () => res.statusText);
    const problems = problemsOf(detail);
    const lines = problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message));
    const text = lines.length ? lines.join("; ") : String(detail);
    throw new ApiError(res.status, text, problems);
  }
  return raw ? res : res.status === 204 ? null : res.json();
}

/** The banner: `<status>: <the server's reason> (hint)`; `null` clears it. */
function showError(err, from = "user") {
  const hint = err && HINTS[err.status];
  $("error").textContent = err ? `${err.status ? `${err.status}: ` : ""}${err.message}${hint ? ` (${hint})` : ""}` : "";
  $("error").hidden = !err;
  state.errorFrom = err ? from : null;
}

const ids = (id) => encodeURIComponent(id);

// ------------------------------------------------------------------------------------------------ key + cameras
function fillSelect(select, emptyLabel, pairs) {
  const keep = select.value;
  const options = pairs.map(([value, text]) => el("option", { value, textContent: text }));
  select.replaceChildren(el("option", { value: "", textContent: emptyLabel }), ...options);
  select.value = pairs.some(([value]) => value === keep) ? keep : "";
}

// The built-in camera-health rule types a camera runs (its `health:` block; on by default).
function healthRules(camera) {
  const h = camera.health || {};
  if (h.enabled === false) return [];
  return [h.offline !== false && "camera_offline", h.tamper !== false && "camera_tamper"].filter(Boolean);
}

async function loadCameras() {
  const data = await api("v1/cameras");
  state.cameras = data.items;
  const pairs = data.items.map((c) => [c.id, c.name && c.name !== c.id ? `${c.name} (${c.id})` : c.id]);
  fillSelect($("f-camera"), "all", pairs);
  fillSelect($("zone-camera"), "—", pairs);
  const rules = [...new Set(data.items.flatMap((c) => [...c.rules.map((r) => r.type), ...healthRules(c)]))].sort();
  fillSelect($("f-rule"), "all", rules.map((r) => [r, r]));
}

function updateKeyField() {
  const has = Boolean(sessionStorage.getItem(KEY_STORE));
  $("key").placeholder = has ? "key set (this tab) — type to replace" : "API key (X-API-Key)";
}

async function start() {
  updateKeyField();
  if (!sessionStorage.getItem(KEY_STORE)) return;
  try {
    await loadCameras();
    showError(null);
  } catch (err) {
    showError(err);
    return;
  }
  state.incSig = "";
  await refreshIncidents();
}

// ---------------------------------------------------------------------------------------------------- incidents
function badge(text) {
  return el("span", { className: `badge ${text}`, textContent: text.replace("_", " ") });
}

/** A signed media link of the API (`?exp=…&sig=…`: opens without the key header, so <img>, <video> and new tabs can
 * load it and the browser streams clips with Range) on this page's server, whatever host the API put in it. */
function sameServer(url) {
  const at = url.search(/\/(v1|ui)\//);
  return at < 0 ? url : new URL(url.slice(at + 1), API_BASE).href;
}

/** The mobile incident page, signed like the incident's media (the signature covers all of one incident's links). */
function pageLink(inc) {
  const media = inc.snapshot_url ?? inc.clip_url;
  return media ? new URL(`ui/i/${ids(inc.id)}${new URL(sameServer(media)).search}`, API_BASE).href : null;
}

function openMedia(url) {
  window.open(sameServer(url), "_blank");
}

/** A long incident's evidence is several clips: the first click lists them (one button each); one clip opens at once. */
async function showClips(id, button) {
  try {
    const { clips, clip_url: first } = await api(`v1/incidents/${ids(id)}`);
    if (clips.length <= 1) return openMedia(first);
    const open = (c) => () => openMedia(c.url);
    const label = (c) => `Clip ${c.index + 1}/${clips.length}`;
    button.replaceWith(...clips.map((c) => el("button", { type: "button", textContent: label(c), onclick: open(c) })));
  } catch (err) {
    showError(err);
  }
}

function incidentRow(inc, names) {
  const img = el("img", { alt: inc.snapshot_url ? "snapshot" : "no snapshot" });
  if (inc.snapshot_url) {
    img.onerror = () => (img.alt = "snapshot unavailable");
    img.src = sameServer(inc.snapshot_url);
  }
  const actions = el("div", { className: "actions" });
  for (const [action, label] of ACTIONS) {
    const button = el("button", { type: "button", textContent: label, onclick: () => handleIncident(inc.id, action) });
    button.dataset.action = action;
    actions.append(button);
  }
  if (inc.clip_url) {
    const clip = el("button", { type: "button", textContent: "Clip" });
    clip.onclick = () => showClips(inc.id, clip);
    actions.append(clip);
  }
  const page = pageLink(inc);
  if (page) {
    const open = el("button", { type: "button", textContent: "Page 详情" });
    open.dataset.page = page;
    open.onclick = () => window.open(page, "_blank"); // this tab's key goes along (sessionStorage is copied)
    actions.append(open);
  }
  const row = el(
    "tr",
    {},
    el("td", {}, img),
    el("td", {}, names.get(inc.camera_id) ?? inc.camera_id, el("div", { className: "muted", textContent: inc.site })),
    el("td", {}, el("div", { textContent: inc.rule }), el("div", { className: "muted", textContent: inc.zone ?? "" })),
    el("td", { textContent: new Date(inc.started_at).toLocaleString() }),
    el("td", {}, badge(inc.status), " ", badge(inc.handling), " ", badge(inc.severity)),
    el("td", {}, actions),
  );
  row.dataset.incident = inc.id;
  row.dataset.handling = inc.handling;
  return row;
}

function renderIncidents(items) {
  const names = new Map(state.cameras.map((c) => [c.id, c.name]));
  $("inc-rows").replaceChildren(...items.map((inc) => incidentRow(inc, names)));
}

async function refreshIncidents() {
  if (!sessionStorage.getItem(KEY_STORE) || state.tab !== "incidents" || document.hidden) return;
  if (state.polling) {
    state.again = true; // one request at a time; refresh once more when it is back
    return;
  }
  state.polling = true;
  const query = new URLSearchParams({ limit: "50" });
  for (const [name, id] of [["camera", "f-camera"], ["rule", "f-rule"], ["status", "f-status"]]) {
    if ($(id).value) query.set(name, $(id).value);
  }
  try {
    const page = await api(`v1/incidents?${query}`);
    const sig = JSON.stringify(page.items.map((i) => [i.id, i.last_seq, i.status, i.handling, !!i.snapshot_url]));
    if (sig !== state.incSig) {
      state.incSig = sig;
      renderIncidents(page.items);
    }
    $("inc-status").textContent = `${page.items.length} shown · ${new Date().toLocaleTimeString()}`;
    if (state.errorFrom === "poll") showError(null);
  } catch (err) {
    showError(err, "poll");
  } finally {
    state.polling = false;
    if (state.again) {
      state.again = false;
      refreshIncidents();
    }
  }
}

async function handleIncident(id, action) {
  const body = {};
  const actor = $("actor").value.trim();
  const note = $("note").value.trim();
  if (actor) body.actor = actor;
  if (note) body.note = note;
  try {
    await api(`v1/incidents/${ids(id)}/${action}`, { method: "POST", body });
    $("note").value = "";
    showError(null);
    state.incSig = "";
    await refreshIncidents();
  } catch (err) {
    showError(err);
  }
}

// ------------------------------------------------------------------------------------------------- zone editor
const round4 = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
const colour = (i) => COLORS[i % COLORS.length];

function setZoneStatus(text) {
  $("zone-status").textContent = text;
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new ApiError(0, "the frame is not a readable image"));
    img.src = url;
  });
}

async function openCamera(id) {
  const token = (ed.token += 1); // a later pick wins over answers still on their way
  if (ed.image) URL.revokeObjectURL(ed.image.src);
  Object.assign(ed, { camera: null, etag: null, zones: [], selected: -1, drawing: null, image: null, dirty: false });
  $("zone-errors").replaceChildren();
  setZoneStatus("");
  delete $("canvas").dataset.ready;
  let camera = null;
  let etag = null;
  let image = null;
  let note = "";
  if (id) {
    try {
      const res = await api(`v1/cameras/${ids(id)}`, { raw: true });
      etag = res.headers.get("ETag");
      camera = await res.json();
      showError(null);
    } catch (err) {
      showError(err);
    }
  }
  if (camera) {
    try {
      const blob = await (await api(`v1/cameras/${ids(id)}/frame.jpg?max_side=1280`, { raw: true })).blob();
      image = await loadImage(URL.createObjectURL(blob));
    } catch (err) {
      note = `no picture: ${err.message}`;
    }
  }
  if (token !== ed.token) {
    if (image) URL.revokeObjectURL(image.src);
    return;
  }
  Object.assign(ed, { camera, etag, image, zones: camera ? structuredClone(camera.zones) : [] });
  setZoneStatus(note);
  renderZones();
  if (camera) $("canvas").dataset.ready = id;
}

function uniqueName() {
  const taken = new Set(ed.zones.map((z) => z.name));
  let n = ed.zones.length + 1;
  while (taken.has(`zone_${n}`)) n += 1;
  return `zone_${n}`;
}

function markDirty() {
  ed.dirty = true;
  setZoneStatus("unsaved changes");
}

function renameZone(zone, name) {
  const old = zone.name;
  if (name && name !== old) {
    zone.name = name;
    for (const rule of ed.camera.rules) {
      if (Array.isArray(rule.zones)) rule.zones = rule.zones.map((n) => (n === old ? name : n)); // keep rules attached
    }
    markDirty();
  }
  renderZones();
}

function zoneItem(zone, i) {
  const name = el("input", { value: zone.name, className: "zone-name", title: "zone name" });
  name.onchange = () => renameZone(zone, name.value.trim());
  const options = KINDS.map((k) => el("option", { value: k, textContent: k }));
  const kind = el("select", { className: "zone-kind", title: "zone kind" }, ...options);
  kind.value = zone.kind ?? "generic";
  kind.onchange = () => { zone.kind = kind.value; markDirty(); draw(); };
  const remove = el("button", { type: "button", className: "zone-delete", textContent: "Delete" });
  remove.onclick = () => { ed.zones.splice(i, 1); ed.selected = -1; markDirty(); renderZones(); };
  const swatch = el("span", { className: "swatch" });
  swatch.style.background = colour(i);
  const item = el("li", { className: i === ed.selected ? "selected" : "" }, swatch, name, remove, kind);
  item.onclick = (ev) => {
    if (ev.target === item || ev.target === swatch) select(i);
  };
  item.dataset.zone = zone.name;
  return item;
}

function renderZones() {
  $("zone-list").replaceChildren(...ed.zones.map(zoneItem));
  $("zone-new").disabled = !ed.camera || Boolean(ed.drawing);
  $("zone-finish").disabled = !ed.drawing;
  $("zone-save").disabled = !ed.camera;
  draw();
}

function select(i) {
  ed.selected = i;
  renderZones();
}

function draw() {
  const cv = $("canvas");
  const w = cv.clientWidth;
  if (!w) return; // tab hidden
  const h = Math.round(w * (ed.image ? ed.image.naturalHeight / ed.image.naturalWidth : 9 / 16));
  const dpr = window.devicePixelRatio || 1;
  cv.style.height = `${h}px`;
  cv.width = Math.round(w * dpr);
  cv.height = Math.round(h * dpr);
  const g = cv.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  if (ed.image) g.drawImage(ed.image, 0, 0, w, h);
  ed.zones.forEach((z, i) => {
    drawPolygon(g, z.polygon, w, h, colour(i), i === ed.selected, true, `${z.name} · ${z.kind ?? "generic"}`);
  });
  if (ed.drawing) drawPolygon(g, ed.drawing, w, h, "#ffffff", true, false, "");
}

function drawPolygon(g, pts, w, h, stroke, selected, closed, label) {
  if (!pts.length) return;
  g.beginPath();
  pts.forEach(([x, y], k) => (k ? g.lineTo(x * w, y * h) : g.moveTo(x * w, y * h)));
  if (closed) g.closePath();
  g.lineWidth = selected ? 3 : 2;
  g.strokeStyle = stroke;
  g.stroke();
  if (closed) {
    g.globalAlpha = selected ? 0.3 : 0.15;
    g.fillStyle = stroke;
    g.fill();
    g.globalAlpha = 1;
  }
  g.fillStyle = "#fff";
  for (const [x, y] of selected ? pts : []) {
    g.fillRect(x * w - 4, y * h - 4, 8, 8);
    g.strokeRect(x * w - 4, y * h - 4, 8, 8);
  }
  if (label) {
    const [lx, ly] = pts.reduce((top, p) => (p[1] < top[1] ? p : top)); // above the topmost point, on a plate
    const x = Math.min(lx * w, w - 40);
    const y = Math.max(ly * h - 6, 16);
    g.font = '13px "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif';
    g.fillStyle = stroke;
    g.fillRect(x - 3, y - 13, g.measureText(label).width + 6, 18);
    g.fillStyle = "#fff";
    g.fillText(label, x, y);
  }
}

/** The pointer position in normalised [0, 1] coordinates (4 decimals, as in the YAML). */
function pointOf(ev) {
  const r = $("canvas").getBoundingClientRect();
  return [round4((ev.clientX - r.left) / r.width), round4((ev.clientY - r.top) / r.height)];
}

function nearPx(a, b) {
  const r = $("canvas").getBoundingClientRect();
  return Math.hypot((a[0] - b[0]) * r.width, (a[1] - b[1]) * r.height) <= NEAR_PX;
}

function hitVertex(p) {
  const order = [ed.selected, ...ed.zones.keys()].filter((i) => i >= 0);
  for (const zone of order) {
    const point = ed.zones[zone].polygon.findIndex((q) => nearPx(p, q));
    if (point >= 0) return { zone, point };
  }
  return null;
}

function inside([x, y], pts) {
  let hit = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
    const [xi, yi] = pts[i];
    const [xj, yj] = pts[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

function finishDrawing() {
  const pts = ed.drawing;
  ed.drawing = null;
  if (pts && pts.length) {
    // Fewer than 3 points is kept as drawn: the server's validation (shown on save) is the one authority.
    ed.zones.push({ name: uniqueName(), kind: "generic", polygon: pts });
    ed.selected = ed.zones.length - 1;
    markDirty();
  }
  renderZones();
}

function onCanvasClick(ev) {
  if (!ed.drawing) return;
  const p = pointOf(ev);
  const last = ed.drawing.at(-1);
  if (last && nearPx(last, p)) return; // the second click of a double-click
  if (ed.drawing.length >= 3 && nearPx(ed.drawing[0], p)) return finishDrawing(); // clicked the first point: close
  ed.drawing.push(p);
  draw();
}

function onCanvasDown(ev) {
  if (ed.drawing || !ed.camera) return;
  const p = pointOf(ev);
  const hit = hitVertex(p);
  if (hit) {
    ed.drag = hit;
    if (ed.selected !== hit.zone) select(hit.zone);
    ev.preventDefault();
    return;
  }
  const zone = ed.zones.findLastIndex((z) => inside(p, z.polygon));
  if (zone !== ed.selected) select(zone);
}

function onPointerMove(ev) {
  if (!ed.drag) return;
  ed.zones[ed.drag.zone].polygon[ed.drag.point] = pointOf(ev);
  if (!ed.dirty) markDirty();
  draw();
}

async function saveZones() {
  if (ed.drawing) finishDrawing();
  if (!ed.camera) return;
  // Everything else exactly as GET returned it: redacted stream URLs (rtsp://***@…) keep the stored credentials.
  const body = { ...ed.camera, zones: ed.zones };
  const headers = ed.etag ? { "If-Match": ed.etag } : {};
  $("zone-errors").replaceChildren();
  setZoneStatus("saving…");
  try {
    const res = await api(`v1/cameras/${ids(ed.camera.id)}`, { method: "PUT", body, headers, raw: true });
    ed.etag = res.headers.get("ETag");
    ed.camera = await res.json();
    ed.zones = structuredClone(ed.camera.zones);
    ed.dirty = false;
    showError(null);
    renderZones();
    setZoneStatus("Saved ✓");
  } catch (err) {
    const stale = "the camera was changed elsewhere: pick it again to reload (your edits are lost)";
    setZoneStatus(err.status === 412 ? stale : `not saved (${err.status || "error"})`);
    if (err.status !== 422) showError(err);
    const problems = err.problems.length ? err.problems : [{ path: "", message: err.message }];
    $("zone-errors").replaceChildren(
      ...problems.map((p) => el("li", {}, ...(p.path ? [el("code", { textContent: p.path }), " "] : []), p.message)),
    );
  }
}

// ---------------------------------------------------------------------------------------------------- wiring
function showTab(name) {
  state.tab = name;
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  $("incidents").hidden = name !== "incidents";
  $("zones").hidden = name !== "zones";
  if (name === "zones") draw();
  else refreshIncidents();
}

function wire() {
  for (const tab of document.querySelectorAll(".tab")) tab.onclick = () => showTab(tab.dataset.tab);
  $("key-form").onsubmit = (ev) => {
    ev.preventDefault();
    const key = $("key").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY_STORE, key);
    $("key").value = "";
    start();
  };
  $("key-clear").onclick = () => {
    sessionStorage.removeItem(KEY_STORE);
    location.reload();
  };
  for (const id of ["f-camera", "f-rule", "f-status"]) {
    $(id).onchange = () => {
      state.incSig = "";
      refreshIncidents();
    };
  }
  $("filters").onsubmit = (ev) => ev.preventDefault();
  $("zone-camera").onchange = (ev) => {
    if (ed.dirty && !confirm("Discard the unsaved zone changes?")) {
      ev.target.value = ed.camera ? ed.camera.id : "";
      return;
    }
    openCamera(ev.target.value);
  };
  $("zone-new").onclick = () => {
    ed.drawing = [];
    ed.selected = -1;
    setZoneStatus("drawing: click to add points");
    renderZones();
    $("canvas").focus();
  };
  $("zone-finish").onclick = finishDrawing;
  $("zone-save").onclick = saveZones;
  const cv = $("canvas");
  cv.addEventListener("click", onCanvasClick);
  cv.addEventListener("dblclick", () => ed.drawing && finishDrawing());
  cv.addEventListener("mousedown", onCanvasDown);
  window.addEventListener("mousemove", onPointerMove);
  window.addEventListener("mouseup", () => (ed.drag = null));
  window.addEventListener("resize", draw);
  document.addEventListener("keydown", (ev) => {
    if (!ed.drawing) return;
    if (ev.key === "Escape") {
      ed.drawing = null;
      setZoneStatus("");
      renderZones();
    } else if (ev.key === "Enter") {
      finishDrawing();
    }
  });
  document.addEventListener("visibilitychange", refreshIncidents);
  setInterval(refreshIncidents, POLL_MS);
}

wire();
start();
