// safewatch site map (安全风险"一张图"): a site's plan with its cameras placed on it, coloured by state, with open
// incidents by severity. Plain JS, no build step (an ES module on the console's catalogue, i18n.js). Like the main
// page it holds no data: every call sends the API key of this tab (sessionStorage, shared with app.js) as
// X-API-Key, so viewers read and operators edit.
import { MESSAGES, applyI18n, fmtTime, lang, ruleName, setLang, severityName, t } from "./i18n.js";

const KEY_STORE = "safewatch.key";
const REFRESH_MS = 10000;
const FRAME_MS = 5000;
const CLICK_PX = 4; // a press that moves less than this is a click, not a drag
const SEVERITIES = ["critical", "warning", "info"];
const API_BASE = new URL("../", location.href); // the page lives at <base>/ui/, the API at <base>/v1/

// This page's messages, added to the console's catalogue (its own entries win) so t() and its missing-key check
// cover them too.
const PAGE = {
  "zh-CN": {
    "map.title": "safewatch · 安全风险一张图", "map.plan.upload": "上传平面图", "map.plan.from_camera": "用摄像头画面",
    "map.plan.use": "设为底图", "map.save": "保存位置", "map.plan.none": "此工地还没有平面图：上传一张图片，或使用摄像头画面。",
    "map.tray.title": "未放置的摄像头", "map.tray.hint": "把摄像头拖到平面图上；拖动标记可移动，拖回此处可移除；点击标记查看详情。",
    "map.tray.empty": "全部已放置", "map.state.streaming": "在线", "map.state.offline": "离线", "map.state.unknown": "未知",
    "map.panel.incidents": "未关闭的事件", "map.panel.all": "在事件列表中查看", "map.panel.live": "实时画面",
    "map.panel.close": "关闭", "map.panel.none": "没有未关闭的事件", "map.frame.forbidden": "实时画面需要操作员（operator）密钥",
    "map.frame.missing": "摄像头未在本机运行，暂无画面", "map.saved": "已保存", "map.unsaved": "有未保存的修改",
    "map.uploading": "正在上传…", "map.uploaded": "底图已更新", "map.no_sites": "没有可见的工地（此密钥下没有摄像头）",
  },
  en: {
    "map.title": "safewatch · site map", "map.plan.upload": "Upload plan", "map.plan.from_camera": "Camera frame",
    "map.plan.use": "Use as plan", "map.save": "Save positions",
    "map.plan.none": "This site has no plan yet: upload an image or use a camera frame.",
    "map.tray.title": "Cameras not placed",
    "map.tray.hint": "Drag a camera onto the plan; drag a marker to move it, back here to remove it; click it for details.",
    "map.tray.empty": "all placed", "map.state.streaming": "streaming", "map.state.offline": "offline",
    "map.state.unknown": "unknown", "map.panel.incidents": "Open incidents", "map.panel.all": "Show in the incident list",
    "map.panel.live": "Live frame", "map.panel.close": "Close", "map.panel.none": "no open incidents",
    "map.frame.forbidden": "the live frame needs an operator key", "map.frame.missing": "the camera is not running here: no frame",
    "map.saved": "Saved", "map.unsaved": "unsaved changes", "map.uploading": "uploading…", "map.uploaded": "plan updated",
    "map.no_sites": "no site visible (no camera for this key)",
  },
};
for (const [code, messages] of Object.entries(PAGE)) {
  if (MESSAGES[code]) for (const [key, text] of Object.entries(messages)) MESSAGES[code][key] ??= text;
}

const $ = (id) => document.getElementById(id);
const ids = (id) => encodeURIComponent(id);
const state = {
  site: null, map: null, markers: new Map(), dirty: false, planUrl: null, selected: null,
  drag: null, frameTimer: null, refreshTimer: null, frameUrl: null,
};

function applyLang() {
  applyI18n();
  document.title = t("map.title");
  updateKeyField();
  if (state.map) render();
}

/** `iso` in the camera's time zone (else the browser's), as the console shows times; a plain local time should the
 * shared formatter refuse its options in this browser. */
function when(iso, zone) {
  try {
    return fmtTime(iso, zone);
  } catch {
    return new Date(iso).toLocaleString(lang(), zone ? { timeZone: zone, timeZoneName: "short" } : {});
  }
}

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// ---------------------------------------------------------------------------------------------------- API + errors
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, { method = "GET", json, form, raw = false } = {}) {
  const key = sessionStorage.getItem(KEY_STORE);
  if (!key) throw new ApiError(0, t("key.first"));
  const init = { method, headers: { "X-API-Key": key } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (form !== undefined) {
    init.body = form;
  }
  const res = await fetch(new URL(path, API_BASE), init);
  if (!res.ok) {
    const detail = await res.json().then((b) => b.detail ?? res.statusText, () => res.statusText);
    const text = Array.isArray(detail)
      ? detail.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message ?? JSON.stringify(p))).join("; ")
      : String(detail);
    throw new ApiError(res.status, text);
  }
  return raw ? res : res.json();
}

function showError(err) {
  const hint = err && [401, 403, 422].includes(err.status) ? t(`hint.${err.status}`) : "";
  const known = Boolean(hint);
  $("error").textContent = err ? `${err.status ? `${err.status}: ` : ""}${err.message}${known ? ` (${hint})` : ""}` : "";
  $("error").hidden = !err;
}

function updateKeyField() {
  const has = Boolean(sessionStorage.getItem(KEY_STORE));
  $("key").placeholder = has ? t("key.set") : t("key.placeholder");
}

// ---------------------------------------------------------------------------------------------------- sites + map
async function loadSites() {
  const sites = await api("v1/sites");
  const select = $("site");
  select.replaceChildren(...sites.map((s) => el("option", { value: s.site, textContent: s.site })));
  if (!sites.length) {
    $("status").textContent = t("map.no_sites");
    return;
  }
  const wanted = new URLSearchParams(location.search).get("site");
  select.value = sites.some((s) => s.site === wanted) ? wanted : sites[0].site;
  await openSite(select.value);
}

async function openSite(site) {
  state.site = site;
  state.dirty = false;
  state.selected = null;
  $("panel").hidden = true;
  const url = new URL(location.href);
  url.searchParams.set("site", site);
  history.replaceState(null, "", url);
  await refresh(true);
}

/** Fetch the map; `positions`: take the stored markers too (else only states and counts, keeping unsaved moves). */
async function refresh(positions) {
  const site = state.site;
  const data = await api(`v1/sites/${ids(site)}/map`);
  if (site !== state.site) return;
  state.map = data;
  if (positions || !state.dirty) {
    state.markers = new Map(data.markers.map((m) => [m.camera_id, { x: m.x, y: m.y }]));
    state.dirty = false;
  }
  await loadPlan(data.plan);
  render();
  if (state.selected) showPanel(state.selected, false);
}

async function loadPlan(plan) {
  const img = $("plan-img");
  const wanted = plan ? plan.url : null;
  if (wanted === state.planUrl) return;
  state.planUrl = wanted;
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  if (!plan) {
    img.removeAttribute("src");
    return;
  }
  const blob = await (await api(plan.url.replace(/^\//, ""), { raw: true })).blob();
  const loaded = new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; });
  img.src = URL.createObjectURL(blob);
  await loaded;
}

function cameraOf(id) {
  return state.map.cameras.find((c) => c.id === id);
}

function label(camera) {
  return camera.name || camera.id;
}

function markerNode(camera) {
  const open = SEVERITIES.filter((s) => camera.open[s]).map((s) =>
    el("span", { className: `count ${s}`, textContent: String(camera.open[s]), title: severityName(s) }),
  );
  const node = el(
    "div",
    { className: `marker ${camera.state}`, title: `${label(camera)} · ${t(`map.state.${camera.state}`)}` },
    el("span", { className: "dot" }),
    el("span", { className: "name", textContent: label(camera) }),
    open.length ? el("span", { className: "counts" }, ...open) : null,
  );
  node.dataset.camera = camera.id;
  node.dataset.state = camera.state;
  node.addEventListener("pointerdown", (ev) => startDrag(ev, camera.id));
  return node;
}

function render() {
  const map = state.map;
  const plan = $("plan");
  const hasPlan = Boolean(map.plan);
  $("plan-empty").hidden = hasPlan;
  $("plan-img").hidden = !hasPlan;
  plan.classList.toggle("empty", !hasPlan);
  for (const old of plan.querySelectorAll(".marker")) old.remove();
  const tray = [];
  for (const camera of map.cameras) {
    const node = markerNode(camera);
    const at = state.markers.get(camera.id);
    if (at && hasPlan) {
      node.style.left = `${at.x * 100}%`;
      node.style.top = `${at.y * 100}%`;
      node.classList.toggle("selected", state.selected === camera.id);
      plan.append(node);
    } else {
      tray.push(node);
    }
  }
  $("tray").replaceChildren(...(tray.length ? tray : [el("p", { className: "muted", textContent: t("map.tray.empty") })]));
  fillCameraSelect(map.cameras);
  $("save").disabled = !state.dirty;
  $("status").textContent = state.dirty ? t("map.unsaved") : "";
  plan.dataset.ready = hasPlan ? map.site : "";
}

function fillCameraSelect(cameras) {
  const select = $("plan-camera");
  const keep = select.value;
  const options = cameras.map((c) => el("option", { value: c.id, textContent: label(c) }));
  select.replaceChildren(el("option", { value: "", textContent: "—" }), ...options);
  select.value = cameras.some((c) => c.id === keep) ? keep : "";
}

// ---------------------------------------------------------------------------------------------------- dragging
function startDrag(ev, cameraId) {
  if (ev.button !== 0) return;
  ev.preventDefault();
  const node = ev.currentTarget;
  state.drag = { cameraId, node, x0: ev.clientX, y0: ev.clientY, moved: false, ghost: null };
  document.addEventListener("pointermove", onDrag);
  document.addEventListener("pointerup", endDrag, { once: true });
}

function onDrag(ev) {
  const d = state.drag;
  if (!d) return;
  if (!d.moved && Math.hypot(ev.clientX - d.x0, ev.clientY - d.y0) < CLICK_PX) return;
  if (!d.moved) {
    d.moved = true;
    d.ghost = d.node.cloneNode(true);
    d.ghost.classList.add("ghost");
    document.body.append(d.ghost);
    d.node.classList.add("dragging");
  }
  d.ghost.style.left = `${ev.clientX}px`;
  d.ghost.style.top = `${ev.clientY}px`;
}

function endDrag(ev) {
  document.removeEventListener("pointermove", onDrag);
  const d = state.drag;
  state.drag = null;
  if (!d) return;
  if (d.ghost) d.ghost.remove();
  d.node.classList.remove("dragging");
  if (!d.moved) {
    if (state.markers.has(d.cameraId)) showPanel(d.cameraId, true);
    return;
  }
  const rect = $("plan-img").getBoundingClientRect();
  const inside = state.map.plan && ev.clientX >= rect.left && ev.clientX <= rect.right
    && ev.clientY >= rect.top && ev.clientY <= rect.bottom;
  const tray = $("tray").closest("aside").getBoundingClientRect();
  if (inside) {
    const x = Math.min(1, Math.max(0, (ev.clientX - rect.left) / rect.width));
    const y = Math.min(1, Math.max(0, (ev.clientY - rect.top) / rect.height));
    state.markers.set(d.cameraId, { x: Math.round(x * 1e4) / 1e4, y: Math.round(y * 1e4) / 1e4 });
  } else if (ev.clientX >= tray.left && ev.clientX <= tray.right && ev.clientY >= tray.top && ev.clientY <= tray.bottom) {
    state.markers.delete(d.cameraId);
  } else {
    return; // dropped elsewhere: nothing changes
  }
  state.dirty = true;
  render();
}

async function save() {
  const markers = [...state.markers].filter(([id]) => cameraOf(id)).map(([camera_id, at]) => ({ camera_id, x: at.x, y: at.y }));
  try {
    state.map = await api(`v1/sites/${ids(state.site)}/map`, { method: "PUT", json: { markers } });
    state.dirty = false;
    render();
    $("status").textContent = t("map.saved");
    showError(null);
  } catch (err) {
    showError(err);
  }
}

// ---------------------------------------------------------------------------------------------------- plan image
async function setPlan(path, form) {
  $("status").textContent = t("map.uploading");
  try {
    const data = await api(path, { method: "PUT", form });
    state.map = data; // its markers are the stored ones: unsaved moves stay in state.markers
    await loadPlan(data.plan);
    render();
    $("status").textContent = t("map.uploaded");
    showError(null);
  } catch (err) {
    $("status").textContent = "";
    showError(err);
  }
}

function uploadPlan() {
  const file = $("plan-file").files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name);
  setPlan(`v1/sites/${ids(state.site)}/map/image`, form).finally(() => { $("plan-file").value = ""; });
}

function planFromCamera() {
  const camera = $("plan-camera").value;
  if (camera) setPlan(`v1/sites/${ids(state.site)}/map/image?from_camera=${ids(camera)}`);
}

// ---------------------------------------------------------------------------------------------------- camera panel
async function showPanel(cameraId, fresh) {
  const camera = cameraOf(cameraId);
  if (!camera) return;
  state.selected = cameraId;
  for (const node of document.querySelectorAll("#plan .marker")) {
    node.classList.toggle("selected", node.dataset.camera === cameraId);
  }
  const panel = $("panel");
  panel.hidden = false;
  panel.dataset.camera = cameraId;
  $("panel-title").textContent = `${label(camera)} (${camera.id})`;
  const counts = SEVERITIES.filter((s) => camera.open[s]).map((s) => `${severityName(s)} ${camera.open[s]}`);
  $("panel-state").textContent = [t(`map.state.${camera.state}`), ...counts].join(" · ");
  $("panel-all").href = `./?camera=${ids(cameraId)}&status=open`;
  await loadPanelIncidents(cameraId);
  if (fresh) startFrames(cameraId);
}

async function loadPanelIncidents(cameraId) {
  const camera = cameraOf(cameraId);
  const params = new URLSearchParams({ camera: cameraId, site: state.site, status: "open", limit: "20" });
  try {
    const page = await api(`v1/incidents?${params}`);
    if (state.selected !== cameraId) return;
    const items = page.items.map((i) =>
      el(
        "li",
        { className: i.severity },
        el("a", { href: `i/${ids(i.id)}`, textContent: `${ruleName(i.rule)}${i.zone ? ` · ${i.zone}` : ""}` }),
        el("span", { className: `sev ${i.severity}`, textContent: severityName(i.severity) }),
        el("time", { dateTime: i.started_at, textContent: when(i.started_at, camera.timezone) }),
      ),
    );
    $("panel-incidents").replaceChildren(...(items.length ? items : [el("li", { className: "muted", textContent: t("map.panel.none") })]));
  } catch (err) {
    showError(err);
  }
}

function startFrames(cameraId) {
  clearInterval(state.frameTimer);
  loadFrame(cameraId);
  state.frameTimer = setInterval(() => loadFrame(cameraId), FRAME_MS);
}

async function loadFrame(cameraId) {
  if (state.selected !== cameraId || document.hidden) return;
  const img = $("panel-frame");
  try {
    const res = await api(`v1/cameras/${ids(cameraId)}/frame.jpg?max_side=640`, { raw: true });
    const url = URL.createObjectURL(await res.blob());
    if (state.selected !== cameraId) return URL.revokeObjectURL(url);
    if (state.frameUrl) URL.revokeObjectURL(state.frameUrl);
    state.frameUrl = url;
    img.src = url;
    img.hidden = false;
    $("panel-frame-note").textContent = "";
  } catch (err) {
    img.hidden = true;
    $("panel-frame-note").textContent = err.status === 403 ? t("map.frame.forbidden") : err.status === 404 ? t("map.frame.missing") : err.message;
    if (err.status === 403 || err.status === 404) clearInterval(state.frameTimer);
  }
}

function closePanel() {
  state.selected = null;
  clearInterval(state.frameTimer);
  $("panel").hidden = true;
  for (const node of document.querySelectorAll("#plan .marker.selected")) node.classList.remove("selected");
}

// ---------------------------------------------------------------------------------------------------- start
async function start() {
  updateKeyField();
  if (!sessionStorage.getItem(KEY_STORE)) return;
  try {
    await loadSites();
    showError(null);
  } catch (err) {
    showError(err);
  }
  clearInterval(state.refreshTimer);
  state.refreshTimer = setInterval(() => {
    if (state.site && !document.hidden && !state.drag) refresh(false).catch(showError);
  }, REFRESH_MS);
}

$("key-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const key = $("key").value.trim();
  if (key) sessionStorage.setItem(KEY_STORE, key);
  $("key").value = "";
  start();
});
$("lang").addEventListener("click", () => {
  setLang(lang() === "zh-CN" ? "en" : "zh-CN");
  applyLang();
});
$("site").addEventListener("change", () => openSite($("site").value).catch(showError));
$("save").addEventListener("click", save);
$("plan-file").addEventListener("change", uploadPlan);
$("plan-camera-use").addEventListener("click", planFromCamera);
$("panel-close").addEventListener("click", closePanel);
window.addEventListener("beforeunload", (ev) => {
  if (state.dirty) ev.preventDefault();
});
applyLang();
start();
