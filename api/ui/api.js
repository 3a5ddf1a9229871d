// Shared helpers of the console: the API client (the typed-in key as X-API-Key), the error banner, DOM building.
// The page holds no data: every call sends the API key the user typed in (sessionStorage, this tab only), so the
// server's roles and site scopes apply unchanged.
"use strict";

import { t } from "./i18n.js";

export const KEY_STORE = "safewatch.key";
export const API_BASE = new URL("../", location.href); // the page lives at <base>/ui/, the API at <base>/v1/

export const $ = (id) => document.getElementById(id);
export const ids = (id) => encodeURIComponent(id);
export const apiKey = () => sessionStorage.getItem(KEY_STORE);

/** A DOM element: `props` are assigned as properties (textContent, value, onclick…); children as nodes/text. */
export function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

export class ApiError extends Error {
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

export async function api(path, { method = "GET", body, headers = {}, raw = false, signal } = {}) {
  const key = apiKey();
  if (!key) throw new ApiError(0, t("key.first"));
  const init = { method, headers: { "X-API-Key": key, ...headers }, signal };
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

let errorFrom = null;

/** The banner: `<status>: <the server's reason> (hint)`; `null` clears it. */
export function showError(err, from = "user") {
  const hint = err && [401, 403, 422].includes(err.status) ? t(`hint.${err.status}`) : "";
  $("error").textContent = err ? `${err.status ? `${err.status}: ` : ""}${err.message}${hint ? ` (${hint})` : ""}` : "";
  $("error").hidden = !err;
  errorFrom = err ? from : null;
}

/** Clear the banner if `from` put it there (a poll that works again clears the poll's error, not the user's). */
export function clearErrorFrom(from) {
  if (errorFrom === from) showError(null);
}

/** A signed media link of the API (`?exp=…&sig=…`: opens without the key header, so <img>, <video> and new tabs can
 * load it and the browser streams clips with Range) on this page's server, whatever host the API put in it. */
export function sameServer(url) {
  const at = url.search(/\/(v1|ui)\//);
  return at < 0 ? url : new URL(url.slice(at + 1), API_BASE).href;
}

/** The mobile incident page, signed like the incident's media (the signature covers all of one incident's links). */
export function pageLink(inc) {
  const media = inc.snapshot_url ?? inc.clip_url;
  return media ? new URL(`ui/i/${ids(inc.id)}${new URL(sameServer(media)).search}`, API_BASE).href : null;
}

export function fillSelect(select, emptyLabel, pairs) {
  const keep = select.value;
  const options = pairs.map(([value, text]) => el("option", { value, textContent: text }));
  select.replaceChildren(el("option", { value: "", textContent: emptyLabel }), ...options);
  select.value = pairs.some(([value]) => value === keep) ? keep : "";
}
