// The console's message catalogue (zh-CN and English) and the formatting of names, times and durations.
// No build step: an ES module imported by app.js and, dynamically, by mobile.js. Every key exists in both
// catalogues (tests/api/test_ui_console.py checks it in the browser); a missing key renders as the key itself and
// is recorded in `missing`, so a test sees it.
"use strict";

const LANG_STORE = "safewatch.lang";

const EN = {
  "app.title": "safewatch console", "tab.incidents": "Incidents", "tab.dashboard": "Dashboard", "tab.zones": "Zone editor",
  "nav.map": "Site map", "lang.toggle": "中文", "key.placeholder": "API key (X-API-Key)", "key.set": "key set (this tab) — type to replace",
  "key.use": "Use key", "key.forget": "Forget", "key.first": "enter an API key first",
  "hint.401": "check the API key", "hint.403": "this key's role is too low", "hint.422": "invalid input",
  "f.site": "Site", "f.camera": "Camera", "f.rule": "Rule", "f.status": "Status", "f.range": "Time", "f.all": "all",
  "f.actor": "Actor", "f.actor.placeholder": "(key name)", "f.note": "Note", "f.note.placeholder": "note",
  "range.1d": "last 24 h", "range.7d": "last 7 days", "range.30d": "last 30 days", "range.all": "any time",
  "status.open": "open", "status.closed": "closed",
  "col.snapshot": "Snapshot", "col.camera": "Camera", "col.rule": "Rule / zone", "col.started": "Started",
  "col.status": "Status", "col.actions": "Actions", "col.select": "Select",
  "act.ack": "Ack", "act.resolve": "Resolve", "act.false-positive": "False positive", "act.clip": "Clip",
  "act.page": "Page", "act.bulk_ack": "Acknowledge selected ({n})", "act.select_all": "Select all on this page",
  "inc.shown": "{n} shown · page {page}", "inc.updated": "updated {time}", "inc.none": "No incidents match.",
  "inc.bulk_done": "{ok} acknowledged, {failed} not ({reasons})", "inc.bulk_ok": "{ok} acknowledged",
  "inc.new_waiting": "{n} new incidents: go to the first page", "inc.help": "Keys: j/k move · x select · a ack · r resolve · f false positive · v clip · n/p next/previous page",
  "page.prev": "← Previous", "page.next": "Next →", "page.first": "First page",
  "live.sse": "live", "live.poll": "polling (live stream refused)", "live.off": "offline",
  "snapshot": "snapshot", "snapshot.none": "no snapshot", "snapshot.broken": "snapshot unavailable",
  "player.title": "Clip", "player.close": "Close", "player.clip": "Clip {i}/{n}",
  "dash.site": "Site", "dash.days": "Days", "dash.refresh": "Refresh", "dash.loading": "loading…",
  "dash.per_day": "Incidents per day per rule", "dash.backlog": "Open backlog by age",
  "dash.handling": "Handling times per site (minutes)", "dash.top_cameras": "Top cameras by incidents",
  "dash.top_zones": "Top zones by incidents", "dash.fp_rule": "False-positive rate per rule",
  "dash.fp_camera": "False-positive rate per camera", "dash.total": "{n} incidents · time zone {tz}",
  "dash.ack_median": "acknowledge, median", "dash.ack_p90": "acknowledge, p90", "dash.res_median": "resolve, median",
  "dash.res_p90": "resolve, p90", "dash.all_sites": "all sites", "dash.no_zone": "(no zone)", "dash.incidents": "incidents",
  "age.lt_1h": "< 1 h", "age.1h_4h": "1–4 h", "age.4h_24h": "4–24 h", "age.1d_3d": "1–3 days", "age.3d_7d": "3–7 days",
  "age.gt_7d": "> 7 days",
  "zone.camera": "Camera", "zone.new": "New zone", "zone.finish": "Finish", "zone.save": "Save", "zone.delete": "Delete",
  "zone.help": "Click to add points, drag points to move, double-click or Finish to close, Esc to cancel.",
  "zone.name": "zone name", "zone.kind": "zone kind", "zone.unsaved": "unsaved changes", "zone.saving": "saving…",
  "zone.saved": "Saved ✓", "zone.not_saved": "not saved ({status})", "zone.drawing": "drawing: click to add points",
  "zone.stale": "the camera was changed elsewhere: pick it again to reload (your edits are lost)",
  "zone.no_picture": "no picture: {reason}", "zone.discard": "Discard the unsaved zone changes?",
  "zone.unreadable": "the frame is not a readable image",
  "kind.generic": "generic", "kind.fire_exit": "fire exit", "kind.indoor": "indoor", "kind.helmet_required": "helmet required",
  "kind.forbidden": "forbidden",
  "rule.no_helmet": "No helmet", "rule.exit_blocked": "Fire exit blocked", "rule.ebike_indoor": "E-bike indoors",
  "rule.smoke_fire": "Smoke / fire", "rule.intrusion": "Intrusion", "rule.loitering": "Loitering",
  "rule.line_crossing": "Line crossing", "rule.camera_offline": "Camera offline", "rule.camera_tamper": "Camera tampered",
  "handling.new": "new", "handling.acknowledged": "acknowledged", "handling.resolved": "resolved",
  "handling.false_positive": "false positive",
  "severity.info": "info", "severity.warning": "warning", "severity.critical": "critical",
  "m.camera": "Camera", "m.site": "Site", "m.rule": "Rule", "m.zone": "Zone", "m.severity": "Severity", "m.status": "Status",
  "m.started": "Started", "m.ended": "Ended", "m.confidence": "Confidence", "m.ok": "OK: {handling}",
  "m.no_evidence": "No evidence yet",
};

const ZH = {
  "app.title": "safewatch 安全监控台", "tab.incidents": "事件", "tab.dashboard": "统计看板", "tab.zones": "区域编辑",
  "nav.map": "安全风险一张图", "lang.toggle": "English", "key.placeholder": "API 密钥 (X-API-Key)", "key.set": "已设置密钥（本标签页）— 输入以替换",
  "key.use": "使用密钥", "key.forget": "清除", "key.first": "请先输入 API 密钥",
  "hint.401": "请检查 API 密钥", "hint.403": "此密钥权限不足", "hint.422": "输入无效",
  "f.site": "站点", "f.camera": "摄像头", "f.rule": "规则", "f.status": "状态", "f.range": "时间", "f.all": "全部",
  "f.actor": "处理人", "f.actor.placeholder": "（密钥名称）", "f.note": "备注", "f.note.placeholder": "备注",
  "range.1d": "最近 24 小时", "range.7d": "最近 7 天", "range.30d": "最近 30 天", "range.all": "全部时间",
  "status.open": "进行中", "status.closed": "已结束",
  "col.snapshot": "快照", "col.camera": "摄像头", "col.rule": "规则 / 区域", "col.started": "开始时间",
  "col.status": "状态", "col.actions": "操作", "col.select": "选择",
  "act.ack": "确认", "act.resolve": "处置", "act.false-positive": "误报", "act.clip": "视频",
  "act.page": "详情", "act.bulk_ack": "批量确认所选（{n}）", "act.select_all": "全选本页",
  "inc.shown": "显示 {n} 条 · 第 {page} 页", "inc.updated": "更新于 {time}", "inc.none": "没有符合条件的事件。",
  "inc.bulk_done": "已确认 {ok} 条，{failed} 条未确认（{reasons}）", "inc.bulk_ok": "已确认 {ok} 条",
  "inc.new_waiting": "有 {n} 条新事件：请回到第一页", "inc.help": "快捷键：j/k 上下移动 · x 选择 · a 确认 · r 处置 · f 误报 · v 视频 · n/p 下一页/上一页",
  "page.prev": "← 上一页", "page.next": "下一页 →", "page.first": "第一页",
  "live.sse": "实时", "live.poll": "轮询（实时推送暂不可用）", "live.off": "离线",
  "snapshot": "快照", "snapshot.none": "无快照", "snapshot.broken": "快照不可用",
  "player.title": "视频", "player.close": "关闭", "player.clip": "视频 {i}/{n}",
  "dash.site": "站点", "dash.days": "天数", "dash.refresh": "刷新", "dash.loading": "加载中…",
  "dash.per_day": "每日各规则事件数", "dash.backlog": "未处理事件（按时长）",
  "dash.handling": "各站点处理时长（分钟）", "dash.top_cameras": "事件最多的摄像头",
  "dash.top_zones": "事件最多的区域", "dash.fp_rule": "各规则误报率",
  "dash.fp_camera": "各摄像头误报率", "dash.total": "共 {n} 条事件 · 时区 {tz}",
  "dash.ack_median": "确认时长中位数", "dash.ack_p90": "确认时长 P90", "dash.res_median": "处置时长中位数",
  "dash.res_p90": "处置时长 P90", "dash.all_sites": "全部站点", "dash.no_zone": "（无区域）", "dash.incidents": "事件数",
  "age.lt_1h": "< 1 小时", "age.1h_4h": "1–4 小时", "age.4h_24h": "4–24 小时", "age.1d_3d": "1–3 天", "age.3d_7d": "3–7 天",
  "age.gt_7d": "> 7 天",
  "zone.camera": "摄像头", "zone.new": "新建区域", "zone.finish": "完成", "zone.save": "保存", "zone.delete": "删除",
  "zone.help": "单击添加顶点，拖动顶点移动，双击或点“完成”闭合，Esc 取消。",
  "zone.name": "区域名称", "zone.kind": "区域类型", "zone.unsaved": "有未保存的修改", "zone.saving": "保存中…",
  "zone.saved": "已保存 ✓", "zone.not_saved": "未保存（{status}）", "zone.drawing": "绘制中：单击添加顶点",
  "zone.stale": "该摄像头已在别处被修改：请重新选择以加载（您的修改将丢失）",
  "zone.no_picture": "无画面：{reason}", "zone.discard": "放弃未保存的区域修改？",
  "zone.unreadable": "画面不是可读取的图片",
  "kind.generic": "通用", "kind.fire_exit": "消防通道", "kind.indoor": "室内", "kind.helmet_required": "须戴安全帽",
  "kind.forbidden": "禁入区",
  "rule.no_helmet": "未戴安全帽", "rule.exit_blocked": "消防通道占用", "rule.ebike_indoor": "电动车入室",
  "rule.smoke_fire": "烟雾火焰", "rule.intrusion": "区域入侵", "rule.loitering": "徘徊",
  "rule.line_crossing": "越线", "rule.camera_offline": "摄像头离线", "rule.camera_tamper": "摄像头遮挡/移位",
  "handling.new": "新事件", "handling.acknowledged": "已确认", "handling.resolved": "已处置",
  "handling.false_positive": "误报",
  "severity.info": "提示", "severity.warning": "警告", "severity.critical": "严重",
  "m.camera": "摄像头", "m.site": "站点", "m.rule": "规则", "m.zone": "区域", "m.severity": "级别", "m.status": "状态",
  "m.started": "开始", "m.ended": "结束", "m.confidence": "置信度", "m.ok": "已更新：{handling}",
  "m.no_evidence": "暂无证据",
};

export const MESSAGES = { en: EN, "zh-CN": ZH };
export const LANGS = Object.keys(MESSAGES);
export const missing = new Set();

/** The stored choice, else zh-CN when the browser's preferred languages put Chinese before English, else English. */
function initialLang() {
  const stored = localStorage.getItem(LANG_STORE);
  if (stored && MESSAGES[stored]) return stored;
  const first = (navigator.languages || [navigator.language || "en"]).find((l) => /^(zh|en)\b/i.test(l)) || "en";
  return /^zh/i.test(first) ? "zh-CN" : "en";
}

let current = initialLang();

export function lang() {
  return current;
}

export function setLang(value) {
  current = MESSAGES[value] ? value : "en";
  localStorage.setItem(LANG_STORE, current);
  document.documentElement.lang = current;
}

/** The message `key` in the current language, `{name}` replaced by `vars.name`. */
export function t(key, vars = {}) {
  const text = MESSAGES[current][key];
  if (text === undefined) {
    missing.add(`${current}:${key}`);
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

/** A name of a vocabulary (rule, handling, severity, status, kind) or, for an unknown one, the raw value. */
function named(prefix, value) {
  if (value === null || value === undefined || value === "") return "";
  return MESSAGES[current][`${prefix}.${value}`] ?? String(value).replaceAll("_", " ");
}

export const ruleName = (rule) => named("rule", rule);
export const handlingName = (h) => named("handling", h);
export const severityName = (s) => named("severity", s);
export const statusName = (s) => named("status", s);
export const kindName = (k) => named("kind", k);

/** Translate the static page: data-i18n (text), data-i18n-placeholder, data-i18n-title, data-i18n-aria. */
export function applyI18n(root = document) {
  document.documentElement.lang = current;
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const node of root.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  for (const node of root.querySelectorAll("[data-i18n-aria]")) node.setAttribute("aria-label", t(node.dataset.i18nAria));
}

export const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

const formats = new Map();

/** `iso` as a local date-time in `zone` (IANA; default the browser's), with the zone's short name. */
export function fmtTime(iso, zone) {
  if (!iso) return "";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return String(iso);
  const tz = zone || browserZone();
  const id = `${current}|${tz}`;
  if (!formats.has(id)) {
    const options = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hour12: false, timeZone: tz, timeZoneName: "short" };
    try {
      formats.set(id, new Intl.DateTimeFormat(current, options));
    } catch {
      formats.set(id, new Intl.DateTimeFormat(current, { ...options, timeZone: undefined }));
    }
  }
  return formats.get(id).format(when);
}
