// Small DOM helpers. Every piece of text from the server (names, errors,
// tracebacks, log lines: all may come from a script or a request) goes in
// through textContent or attribute setters, never as markup.

/** h("td", {class: "num"}, "12") -> <td class="num">12</td> */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "innerHTML" || key === "outerHTML") throw new Error("h(): markup is not accepted");
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

const nf0 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const nf2 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

export function count(n) {
  return nf0.format(n ?? 0);
}

/** Milliseconds, with fewer decimals as the value grows. */
export function ms(v, requests = 1) {
  if (!requests || v === null || v === undefined) return "—";
  if (v >= 100) return nf0.format(v);
  if (v >= 10) return nf1.format(v);
  return nf2.format(v);
}

export function rate(v) {
  return nf1.format(v ?? 0);
}

export function percent(ratio) {
  return `${nf1.format((ratio ?? 0) * 100)}%`;
}

export function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${nf1.format(n)} ${units[i]}`;
}

export function ago(ms, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ago`;
}

export function clock(ms) {
  return new Date(ms).toLocaleTimeString();
}

/** "1h 2m 3s" for a duration in ms. */
export function duration(ms) {
  let s = Math.max(0, Math.floor(ms / 1000));
  const parts = [];
  for (const [unit, size] of [["h", 3600], ["m", 60]]) {
    if (s >= size) { parts.push(`${Math.floor(s / size)}${unit}`); s %= size; }
  }
  parts.push(`${s}s`);
  return parts.join(" ");
}

/** A table with a fixed header; returns {table, tbody, tfoot}. */
export function table(columns, attrs = {}) {
  const tbody = h("tbody");
  const tfoot = h("tfoot");
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : "", scope: "col" }, c.title)));
  const el = h("table", attrs, h("thead", {}, head), tbody, tfoot);
  return { table: el, tbody, tfoot, head };
}

/** An empty-state line. */
export function empty(text) {
  return h("p", { class: "empty" }, text);
}
