// safewatch web console: incident list (incidents.js), dashboard (dashboard.js), zone editor (zones.js), in zh-CN
// and English (i18n.js). Plain ES modules, no build step. This module wires them: the key form, the tabs, the
// language toggle, the cameras every part needs, live updates (live.js) with polling as the fallback.
"use strict";

import { $, KEY_STORE, api, apiKey, fillSelect, showError } from "./api.js";
import { refreshDashboard, redrawDashboard, setDashboardCameras, wireDashboard } from "./dashboard.js";
import { applyI18n, lang, ruleName, setLang, t } from "./i18n.js";
import { onLiveEvent, refreshIncidents, rerender, setActive, setCameras, wireIncidents } from "./incidents.js";
import { startLive } from "./live.js";
import { draw, renderZones, wireZones } from "./zones.js";

const POLL_MS = 4000;
const state = { cameras: [], tab: "incidents", live: "off", stopLive: null };

// The built-in camera-health rule types a camera runs (its `health:` block; on by default).
function healthRules(camera) {
  const h = camera.health || {};
  if (h.enabled === false) return [];
  return [h.offline !== false && "camera_offline", h.tamper !== false && "camera_tamper"].filter(Boolean);
}

function fillFilters() {
  const cameras = state.cameras;
  const pairs = cameras.map((c) => [c.id, c.name && c.name !== c.id ? `${c.name} (${c.id})` : c.id]);
  fillSelect($("f-camera"), t("f.all"), pairs);
  fillSelect($("zone-camera"), "—", pairs);
  const sites = [...new Set(cameras.map((c) => c.site))].sort().map((s) => [s, s]);
  fillSelect($("f-site"), t("f.all"), sites);
  fillSelect($("dash-site"), t("f.all"), sites);
  const rules = [...new Set(cameras.flatMap((c) => [...c.rules.map((r) => r.type), ...healthRules(c)]))].sort();
  fillSelect($("f-rule"), t("f.all"), rules.map((r) => [r, ruleName(r)]));
}

async function loadCameras() {
  const data = await api("v1/cameras");
  state.cameras = data.items;
  setCameras(data.items);
  setDashboardCameras(data.items);
  fillFilters();
}

function updateKeyField() {
  $("key").placeholder = apiKey() ? t("key.set") : t("key.placeholder");
}

function showLive(mode) {
  state.live = mode;
  $("live").dataset.live = mode;
  $("live").textContent = apiKey() ? t(`live.${mode}`) : "";
}

function onEvent(type, data) {
  if (type === "reconnected") refreshIncidents();
  else onLiveEvent(type, data);
}

async function start() {
  updateKeyField();
  if (!apiKey()) return;
  try {
    await loadCameras();
    showError(null);
  } catch (err) {
    showError(err);
    return;
  }
  state.stopLive?.();
  state.stopLive = startLive(onEvent, showLive);
  showTab(state.tab);
}

function showTab(name) {
  state.tab = name;
  for (const tab of document.querySelectorAll(".tab[data-tab]")) tab.classList.toggle("active", tab.dataset.tab === name);
  for (const panel of ["incidents", "dashboard", "zones"]) $(panel).hidden = name !== panel;
  setActive(name === "incidents");
  if (name === "zones") draw();
  if (name === "dashboard" && apiKey()) refreshDashboard();
}

/** Switch the language: the static page, then what the modules drew. */
function applyLanguage(value) {
  setLang(value);
  applyI18n();
  updateKeyField();
  showLive(state.live);
  if (state.cameras.length) fillFilters();
  rerender();
  renderZones();
  if (state.tab === "dashboard") redrawDashboard();
}

function wire() {
  for (const tab of document.querySelectorAll(".tab[data-tab]")) tab.onclick = () => showTab(tab.dataset.tab);
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
  $("lang-toggle").onclick = () => applyLanguage(lang() === "zh-CN" ? "en" : "zh-CN");
  wireIncidents();
  wireDashboard();
  wireZones();
  document.addEventListener("visibilitychange", refreshIncidents);
  setInterval(() => state.live !== "sse" && refreshIncidents(), POLL_MS); // live: the stream says when
}

applyLanguage(lang());
wire();
start();
