// The mobile incident page (/ui/i/{id}, rendered by api/routers/mobile.py): its labels, rule, severity and handling
// names in the console's language (i18n.js: zh-CN when the browser prefers Chinese, or the stored choice, with a
// toggle), times in the browser's zone, and the handling buttons when this tab holds the web UI's API key
// (sessionStorage, as the console keeps it) or the page was opened with a key.
"use strict";

const KEY_STORE = "safewatch.key";
const body = document.body;
const key = sessionStorage.getItem(KEY_STORE);
const LABELS = {
  Camera: "m.camera", Site: "m.site", Rule: "m.rule", Zone: "m.zone", Severity: "m.severity", Status: "m.status",
  Started: "m.started", Ended: "m.ended", Confidence: "m.confidence",
};
let i18n = null;

/** The raw values the server rendered, kept once so that a language switch can name them again. */
function remember() {
  for (const dt of document.querySelectorAll("dl dt")) {
    const english = dt.textContent.trim().split(" ").at(-1);
    dt.dataset.label = LABELS[english] ?? "";
    const dd = dt.nextElementSibling;
    if (english === "Rule" || english === "Severity") dd.dataset.raw = dd.textContent.trim();
    if (english === "Status") {
      const handling = document.getElementById("handling");
      handling.dataset.handling = handling.textContent.trim();
      dd.dataset.status = dd.firstChild.textContent.replace("/", "").trim();
    }
  }
  const badge = document.querySelector("header .badge");
  if (badge) badge.dataset.raw = badge.textContent.trim();
  const h1 = document.querySelector("h1");
  const rule = document.querySelector("dd[data-raw]")?.dataset.raw;
  if (h1 && rule && h1.textContent.startsWith(rule)) h1.dataset.rest = h1.textContent.slice(rule.length);
}

function translate() {
  const { t, ruleName, severityName, statusName, handlingName, fmtTime, lang } = i18n;
  document.documentElement.lang = lang();
  for (const dt of document.querySelectorAll("dt[data-label]")) {
    if (!dt.dataset.label) continue;
    dt.textContent = t(dt.dataset.label);
    const dd = dt.nextElementSibling;
    if (dt.dataset.label === "m.rule") Object.assign(dd, { textContent: ruleName(dd.dataset.raw), title: dd.dataset.raw });
    if (dt.dataset.label === "m.severity") dd.textContent = severityName(dd.dataset.raw);
    if (dt.dataset.label === "m.status") dd.firstChild.textContent = `${statusName(dd.dataset.status)} / `;
  }
  const handling = document.getElementById("handling");
  if (handling) handling.textContent = handlingName(handling.dataset.handling);
  const badge = document.querySelector("header .badge[data-raw]");
  if (badge) badge.textContent = severityName(badge.dataset.raw);
  const h1 = document.querySelector("h1[data-rest]");
  const rule = document.querySelector("dd[data-raw]")?.dataset.raw;
  if (h1) h1.textContent = `${ruleName(rule)}${h1.dataset.rest}`;
  for (const b of document.querySelectorAll("button[data-action]")) b.textContent = t(`act.${b.dataset.action}`);
  const links = document.querySelectorAll(".clips a");
  links.forEach((a, i) => (a.textContent = t("player.clip", { i: i + 1, n: links.length })));
  const none = document.querySelector("main > p.muted");
  if (none) none.textContent = t("m.no_evidence");
  for (const time of document.querySelectorAll("time[datetime]")) time.textContent = fmtTime(time.getAttribute("datetime"));
  document.getElementById("lang-toggle").textContent = t("lang.toggle");
}

async function handle(action) {
  const message = document.getElementById("message");
  const headers = { "Content-Type": "application/json", ...(key ? { "X-API-Key": key } : {}) };
  const path = `/v1/incidents/${encodeURIComponent(body.dataset.incident)}/${action}`;
  try {
    const res = await fetch(path, { method: "POST", headers, body: "{}" });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`${res.status}: ${data.detail ?? res.statusText}`);
    const handling = document.getElementById("handling");
    handling.dataset.handling = data.handling;
    handling.textContent = i18n ? i18n.handlingName(data.handling) : data.handling;
    message.textContent = i18n ? i18n.t("m.ok", { handling: handling.textContent }) : `OK: ${data.handling}`;
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

remember();
import("/ui/i18n.js").then((module) => {
  i18n = module;
  const toggle = Object.assign(document.createElement("button"), { type: "button", id: "lang-toggle", className: "lang" });
  toggle.addEventListener("click", () => {
    i18n.setLang(i18n.lang() === "zh-CN" ? "en" : "zh-CN");
    translate();
  });
  document.querySelector("header").append(toggle);
  translate();
  body.dataset.translated = "1";
});
