// The zone editor: draw, move, rename and save a camera's zones on its live frame (PUT with If-Match).
"use strict";

import { $, api, ApiError, el, ids, showError } from "./api.js";
import { kindName, t } from "./i18n.js";

const KINDS = ["generic", "fire_exit", "indoor", "helmet_required", "forbidden"];
const COLORS = ["#e6553a", "#2f7dd1", "#2ca25f", "#d99a00", "#8e44ad", "#16a5a5"];
const NEAR_PX = 8;

const ed = { camera: null, etag: null, zones: [], selected: -1, drawing: null, drag: null, image: null, dirty: false };
ed.token = 0; // the latest camera pick (openCamera)

const round4 = (v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000;
const colour = (i) => COLORS[i % COLORS.length];

function setZoneStatus(text) {
  $("zone-status").textContent = text;
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new ApiError(0, t("zone.unreadable")));
    img.src = url;
  });
}

export async function openCamera(id) {
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
      note = t("zone.no_picture", { reason: err.message });
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
  setZoneStatus(t("zone.unsaved"));
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
  const name = el("input", { value: zone.name, className: "zone-name", title: t("zone.name") });
  name.onchange = () => renameZone(zone, name.value.trim());
  const options = KINDS.map((k) => el("option", { value: k, textContent: kindName(k) }));
  const kind = el("select", { className: "zone-kind", title: t("zone.kind") }, ...options);
  kind.value = zone.kind ?? "generic";
  kind.onchange = () => { zone.kind = kind.value; markDirty(); draw(); };
  const remove = el("button", { type: "button", className: "zone-delete", textContent: t("zone.delete") });
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

export function renderZones() {
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

export function draw() {
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
    drawPolygon(g, z.polygon, w, h, colour(i), i === ed.selected, true, `${z.name} · ${kindName(z.kind ?? "generic")}`);
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
  setZoneStatus(t("zone.saving"));
  try {
    const res = await api(`v1/cameras/${ids(ed.camera.id)}`, { method: "PUT", body, headers, raw: true });
    ed.etag = res.headers.get("ETag");
    ed.camera = await res.json();
    ed.zones = structuredClone(ed.camera.zones);
    ed.dirty = false;
    showError(null);
    renderZones();
    setZoneStatus(t("zone.saved"));
  } catch (err) {
    setZoneStatus(err.status === 412 ? t("zone.stale") : t("zone.not_saved", { status: err.status || "error" }));
    if (err.status !== 422) showError(err);
    const problems = err.problems.length ? err.problems : [{ path: "", message: err.message }];
    $("zone-errors").replaceChildren(
      ...problems.map((p) => el("li", {}, ...(p.path ? [el("code", { textContent: p.path }), " "] : []), p.message)),
    );
  }
}

export function wireZones() {
  $("zone-camera").onchange = (ev) => {
    if (ed.dirty && !confirm(t("zone.discard"))) {
      ev.target.value = ed.camera ? ed.camera.id : "";
      return;
    }
    openCamera(ev.target.value);
  };
  $("zone-new").onclick = () => {
    ed.drawing = [];
    ed.selected = -1;
    setZoneStatus(t("zone.drawing"));
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
}
