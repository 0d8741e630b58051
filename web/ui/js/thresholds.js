// The thresholds' badges under the header: one per check the master
// judges on its live snapshot, green while it holds, red while crossed,
// grey while there is nothing to measure yet. Hidden without thresholds.

import { $, fill, h } from "./dom.js";

const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

function value(v, unit) {
  if (v === null || v === undefined) return "no data";
  const n = nf.format(v);
  if (!unit) return n;
  return unit === "%" || unit === "/s" ? `${n}${unit}` : `${n} ${unit}`;
}

function state(check) {
  if (check.ok) return "ok";
  return check.observed === null || check.observed === undefined ? "nodata" : "crossed";
}

export function renderThresholds(checks) {
  const box = $("#thresholds");
  const list = checks || [];
  box.hidden = list.length === 0;
  fill(box, list.map((c) => {
    const label = c.scope === "Aggregated" ? c.expr : `${c.scope}: ${c.expr}`;
    const s = state(c);
    return h("span", {
      class: `threshold ${s}`,
      dataset: { expr: c.expr, scope: c.scope, state: s, kind: c.kind },
      title: `${c.kind} ${label}: observed ${value(c.observed, c.unit)}, limit ${c.op} ${value(c.limit, c.unit)}`,
    }, h("span", { class: "dot", "aria-hidden": "true" }, s === "ok" ? "✓" : s === "crossed" ? "✗" : "…"),
    ` ${label} `, h("small", {}, value(c.observed, c.unit)));
  }));
}
