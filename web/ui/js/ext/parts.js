// The pieces script views are drawn with: figures, tables and uPlot charts
// built from the data a view returns (see docs/extending.md). Everything a
// script sends is data: it reaches the page through textContent and
// attribute setters in dom.js, never as markup.

import { h, fill, table } from "../dom.js";
import { timeAxis, legendValue, refreshLegend } from "../chart-axis.js";

const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

/** A cell or figure value as text: numbers formatted, null as a dash. */
export function show(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "number") return nf.format(value);
  return String(value);
}

/** A row of key figures; `tone` colours the value. */
export function figures(list) {
  return h("dl", { class: "figures ext-figures" }, list.map((f) => h("div", {},
    h("dt", {}, f.label),
    h("dd", { class: f.tone ? `tone-${f.tone}` : "" }, show(f.value), f.unit ? h("small", {}, ` ${f.unit}`) : null))));
}

/** One table card; numeric cells are right-aligned. */
export function dataTable(t) {
  // A column of numbers is right-aligned, header included.
  const numeric = (i) => t.rows.length > 0 && t.rows.every((r) => r[i] === null || typeof r[i] === "number");
  const columns = t.columns.map((title, i) => ({ title, num: numeric(i) }));
  const { table: el, tbody } = table(columns, { class: "ext-table" });
  fill(tbody, t.rows.map((row) => h("tr", {},
    row.map((cell) => h("td", { class: typeof cell === "number" ? "num" : "" }, show(cell))))));
  const empty = t.rows.length === 0 ? h("p", { class: "empty" }, "No rows.") : null;
  return h("div", { class: "card" }, t.title ? h("h3", {}, t.title) : null, h("div", { class: "scroll" }, el), empty);
}

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

const PALETTE = ["--accent", "--bad", "--ok", "--warn", "--muted"];

// Steps for an x of whole numbers (ranks, counts): uPlot would otherwise
// put ticks at 1.1, 1.2, ... between them.
const WHOLE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000, 1000000];

function countAxis(axis, x) {
  return x.every(Number.isInteger) ? { ...axis, space: 50, incrs: WHOLE_STEPS } : axis;
}

/** A chart card that keeps its uPlot between renders of the same shape. */
export class Chart {
  constructor() {
    this.box = h("div", { class: "chart ext-chart" });
    this.title = h("h3", {});
    this.el = h("div", { class: "card" }, this.title, this.box);
    this.plot = null;
    this.shape = "";
  }

  data(c) {
    const x = c.time ? c.x.map((ms) => ms / 1000) : c.x;
    return [x, ...c.series.map((s) => s.values)];
  }

  /** Draws `c`; needs the card to be laid out (its tab visible). */
  update(c) {
    this.title.textContent = c.title || "";
    this.box.dataset.points = String(c.x.length);
    if (typeof uPlot === "undefined") return;
    const shape = JSON.stringify([c.time, c.series.map((s) => s.label)]);
    if (this.plot && shape === this.shape) {
      this.plot.setData(this.data(c));
      refreshLegend(this.plot);
      return;
    }
    this.destroy();
    this.shape = shape;
    const axis = { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
    const xAxis = c.time ? timeAxis(axis) : countAxis(axis, c.x);
    const opts = {
      width: Math.max(this.box.clientWidth, 300), height: 240,
      axes: [xAxis, { ...axis, size: 56 }],
      scales: { x: { time: Boolean(c.time) } },
      series: [{ value: legendValue(Boolean(c.time)) }, ...c.series.map((s, i) => ({
        label: s.label, stroke: css(PALETTE[i % PALETTE.length]), width: 2, spanGaps: true, value: legendValue(),
      }))],
    };
    this.plot = new uPlot(opts, this.data(c), this.box);
    refreshLegend(this.plot);
  }

  resize() {
    if (this.plot && this.box.clientWidth > 0) this.plot.setSize({ width: this.box.clientWidth, height: 240 });
  }

  destroy() {
    this.plot?.destroy();
    this.plot = null;
  }
}

/** A script error, shown where the view or result would be. */
export function errorBox(message) {
  return h("p", { class: "ext-error", role: "alert" }, message);
}
