// The dashboard: ECharts (vendored at vendor/echarts.min.js, loaded on first view) fed by one `GET /v1/stats`:
// incidents per day per rule (stacked), the open backlog by age, handling times per site, top cameras and zones,
// false-positive rates per rule and per camera. Days are the site's (its cameras' schedule time zone) or the browser's.
"use strict";

import { $, api, el, showError } from "./api.js";
import { handlingName, ruleName, t } from "./i18n.js";
import { siteZone } from "./incidents.js";

const CHARTS = ["per-day", "backlog", "handling", "top-cameras", "top-zones", "fp-rule", "fp-camera"];
const TOP = 10;
const dash = { stats: null, cameras: new Map(), loading: null, token: 0 };

function loadECharts() {
  if (window.echarts) return Promise.resolve(window.echarts);
  dash.loading ??= new Promise((resolve, reject) => {
    const script = el("script", { src: "vendor/echarts.min.js" });
    script.onload = () => resolve(window.echarts);
    script.onerror = () => reject(new Error("vendor/echarts.min.js did not load"));
    document.head.append(script);
  });
  return dash.loading;
}

export function setDashboardCameras(cameras) {
  dash.cameras = new Map(cameras.map((c) => [c.id, c.name || c.id]));
}

function chart(name) {
  const node = $(`chart-${name}`);
  return window.echarts.getInstanceByDom(node) || window.echarts.init(node, null, { renderer: "canvas" });
}

const base = (extra = {}) => ({
  animation: false,
  tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
  legend: { type: "scroll", top: 0 },
  grid: { left: 8, right: 16, top: 36, bottom: 8, containLabel: true },
  ...extra,
});

const bars = (name, data, extra = {}) => ({ type: "bar", name, data, barMaxWidth: 56, ...extra });

function localDays(days, tz) {
  const fmt = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" });
  const out = [];
  for (let i = days - 1; i >= 0; i -= 1) out.push(fmt.format(new Date(Date.now() - i * 86400e3)));
  return [...new Set(out)];
}

function perDay(s, days) {
  const rows = s.groups.find((g) => g.by.join() === "day,rule")?.rows ?? [];
  const x = [...new Set([...localDays(days, s.timezone), ...rows.map((r) => r.key[0])])].sort();
  const rules = [...new Set(rows.map((r) => r.key[1]))].sort();
  const series = rules.map((rule) => {
    const counts = new Map(rows.filter((r) => r.key[1] === rule).map((r) => [r.key[0], r.count]));
    return bars(ruleName(rule), x.map((d) => counts.get(d) ?? 0), { stack: "day" });
  });
  return base({ xAxis: { type: "category", data: x }, yAxis: { type: "value", minInterval: 1 }, series });
}

function backlog(s) {
  const x = s.backlog.map((b) => t(`age.${b.age}`));
  const series = ["new", "acknowledged"].map((h) => bars(handlingName(h), s.backlog.map((b) => b[h]), { stack: "age" }));
  return base({ xAxis: { type: "category", data: x }, yAxis: { type: "value", minInterval: 1 }, series });
}

function handling(s) {
  const minutes = (v) => (v === null ? null : Math.round((v / 60) * 10) / 10);
  const x = s.handling_times.map((h) => (h.site === "*" ? t("dash.all_sites") : h.site));
  const pick = [["dash.ack_median", "acknowledge", "median_s"], ["dash.ack_p90", "acknowledge", "p90_s"],
    ["dash.res_median", "resolve", "median_s"], ["dash.res_p90", "resolve", "p90_s"]];
  const series = pick.map(([label, phase, q]) => bars(t(label), s.handling_times.map((h) => minutes(h[phase][q]))));
  return base({ xAxis: { type: "category", data: x }, yAxis: { type: "value" }, series });
}

function topBars(pairs, label) {
  const top = pairs.sort((a, b) => b[1] - a[1]).slice(0, TOP).reverse();
  return base({
    legend: { show: false },
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", data: top.map((p) => p[0]), axisLabel: { width: 160, overflow: "truncate" } },
    series: [bars(label, top.map((p) => p[1]), { label: { show: true, position: "right" } })],
  });
}

function topZones(s) {
  const rows = s.groups.find((g) => g.by.join() === "camera,zone")?.rows ?? [];
  const name = (r) => `${dash.cameras.get(r.key[0]) ?? r.key[0]} · ${r.key[1] || t("dash.no_zone")}`;
  return topBars(rows.map((r) => [name(r), r.count]), t("dash.incidents"));
}

function fpRates(rates, label) {
  const judged = rates.filter((r) => r.rate !== null);
  return base({
    legend: { show: false },
    tooltip: { trigger: "item", formatter: (p) => `${p.name}: ${p.value}% (${judged[p.dataIndex].false_positive}/${judged[p.dataIndex].judged})` },
    xAxis: { type: "category", data: judged.map((r) => label(r.key)), axisLabel: { interval: 0, rotate: 20 } },
    yAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
    series: [bars("fp", judged.map((r) => Math.round(r.rate * 1000) / 10), { label: { show: true, position: "top", formatter: "{c}%" } })],
  });
}

function draw() {
  const s = dash.stats;
  if (!s || !window.echarts || $("dashboard").hidden) return;
  const days = Number($("dash-days").value);
  const camera = (id) => dash.cameras.get(id) ?? id;
  const options = {
    "per-day": perDay(s, days),
    backlog: backlog(s),
    handling: handling(s),
    "top-cameras": topBars(Object.entries(s.by_camera).map(([k, n]) => [camera(k), n]), t("dash.incidents")),
    "top-zones": topZones(s),
    "fp-rule": fpRates(s.false_positives_by_rule, ruleName),
    "fp-camera": fpRates(s.false_positives_by_camera, camera),
  };
  for (const name of CHARTS) {
    const c = chart(name);
    c.setOption(options[name], { notMerge: true });
    c.resize();
  }
  $("dash-total").textContent = t("dash.total", { n: s.total, tz: s.timezone });
  $("dashboard").dataset.ready = "1";
}

export async function refreshDashboard() {
  const token = (dash.token += 1);
  const site = $("dash-site").value;
  const tz = siteZone(site);
  const q = new URLSearchParams({ tz, since: new Date(Date.now() - Number($("dash-days").value) * 86400e3).toISOString() });
  q.append("group_by", "day,rule");
  q.append("group_by", "camera,zone");
  if (site) q.set("site", site);
  $("dash-total").textContent = t("dash.loading");
  try {
    const [stats] = await Promise.all([api(`v1/stats?${q}`), loadECharts()]);
    if (token !== dash.token) return;
    dash.stats = stats;
    draw();
    showError(null);
  } catch (err) {
    showError(err);
  }
}

/** Re-draw with the current language (names, axis labels) without asking the server again. */
export const redrawDashboard = draw;

export function wireDashboard() {
  $("dash-site").onchange = refreshDashboard;
  $("dash-days").onchange = refreshDashboard;
  $("dash-refresh").onclick = refreshDashboard;
  window.addEventListener("resize", () => {
    if (!window.echarts || $("dashboard").hidden) return;
    for (const name of CHARTS) window.echarts.getInstanceByDom($(`chart-${name}`))?.resize();
  });
}
