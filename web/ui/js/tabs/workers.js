// Workers tab: the scale panel (desired / connected / ready, a form to set
// the count, and what --autoscale did and whether it is paused) and the
// list of workers, lost ones marked as lost.

import { h, fill, count, bytes, ago, table, empty } from "../dom.js";

const COLUMNS = [
  { title: "Worker" },
  { title: "State" },
  { title: "Users", num: true },
  { title: "Cores", num: true },
  { title: "CPU", num: true },
  { title: "Memory", num: true },
  { title: "Last heartbeat" },
];

/** A whole number from 0 to max, or a message naming the problem. */
export function validateWorkers(text, max) {
  const value = text.trim();
  if (value === "") return { problem: "Enter a number of workers." };
  if (!/^-?\d+(\.\d+)?$/.test(value)) return { problem: `“${value}” is not a number.` };
  const n = Number(value);
  if (!Number.isInteger(n)) return { problem: "The number of workers must be a whole number." };
  if (n < 0) return { problem: "The number of workers cannot be negative." };
  if (n > max) return { problem: `At most ${max} workers (--max-workers).` };
  return { value: n };
}

function figure(label, id) {
  const value = h("strong", { id }, "—");
  return { el: h("div", {}, value, h("span", {}, label)), value };
}

/** What the note under the counts says, and how loudly. */
function noteFor(status, message) {
  if (message) return { text: message.text, cls: "note bad" };
  if (!status) return { text: "", cls: "note" };
  if (!status.scaler) {
    return { text: "Scaling is not configured: start the master with --scaler kubernetes or --scaler local.", cls: "note" };
  }
  let text = "";
  if (status.desired !== null && status.connected !== status.desired) {
    text = `Scaling: ${status.connected} of ${status.desired} workers connected…`;
  }
  if (status.warning) text = `${text} ${status.warning}`.trim();
  return { text, cls: text ? "note warn" : "note" };
}

/** The autoscale line: its range and last decision, or why it is paused. */
export function autoscaleText(autoscale) {
  if (!autoscale) return "";
  const { policy, paused, events } = autoscale;
  const range = `Autoscaling between ${policy.min} and ${policy.max} workers (CPU above ${policy.high_pct}% for ${policy.window_ms / 1000} s).`;
  const last = events.length ? events[events.length - 1] : null;
  const latest = last ? ` Last: ${last.message}${last.error ? ` (refused: ${last.error})` : ""}.` : "";
  if (paused) return `Autoscaling ${paused}.${latest}`;
  return `${range}${latest}`;
}

/** The scale card: polls `api/v1/workers/scale` while shown. */
function scalePanel(ctx) {
  const desired = figure("Desired", "scale-desired");
  const connected = figure("Connected", "scale-connected");
  const ready = figure("Ready", "scale-ready");
  const input = h("input", { type: "number", name: "workers", id: "scale-input", min: "0", max: String(ctx.ui.max_workers), step: "1", required: true, inputmode: "numeric" });
  const apply = h("button", { type: "submit", class: "primary", id: "scale-submit" }, "Scale");
  const form = h("form", { class: "inline-form", id: "scale-form", novalidate: true }, h("label", { for: "scale-input" }, "Workers"), input, apply);
  const note = h("p", { class: "note", id: "scale-note", role: "status" });
  const auto = h("p", { class: "note", id: "autoscale-note", hidden: true });
  const el = h("div", { class: "card" }, h("h3", {}, "Scale"),
    h("div", { class: "scale" }, h("div", { class: "counts" }, desired.el, connected.el, ready.el), form), note, auto);
  let status = null;
  let message = null;

  function showNote() {
    const { text, cls } = noteFor(status, message);
    note.textContent = text;
    note.className = cls;
  }

  async function refresh() {
    try {
      status = await ctx.api.get("api/v1/workers/scale");
      desired.value.textContent = status.desired ?? "—";
      connected.value.textContent = status.connected;
      ready.value.textContent = status.ready ?? "—";
      input.disabled = apply.disabled = !status.scaler;
      auto.textContent = autoscaleText(status.autoscale);
      auto.hidden = !status.autoscale;
      auto.className = status.autoscale?.paused ? "note warn" : "note";
      if (document.activeElement !== input && input.value === "" && status.desired !== null) input.value = status.desired;
      showNote();
    } catch (e) {
      message = { text: `Cannot read the scale: ${e.message}` };
      showNote();
    }
  }

  async function submit(event) {
    event.preventDefault();
    const checked = validateWorkers(input.value, ctx.ui.max_workers);
    input.setAttribute("aria-invalid", String(Boolean(checked.problem)));
    if (checked.problem) { message = { text: checked.problem }; showNote(); return; }
    apply.disabled = true;
    try {
      const result = await ctx.api.put("api/v1/workers/scale", { workers: checked.value });
      message = null;
      ctx.toast(result.message);
      await refresh();
    } catch (e) {
      message = { text: e.message };
      showNote();
    } finally {
      apply.disabled = !status?.scaler;
    }
  }

  form.addEventListener("submit", submit);
  input.addEventListener("input", () => { message = null; input.setAttribute("aria-invalid", "false"); showNote(); });
  return {
    el,
    refresh,
    /** The live stream knows the connected count sooner than the poll. */
    connected(n) {
      if (!status) return;
      status.connected = n;
      connected.value.textContent = n;
      showNote();
    },
  };
}

function workerRow(w, now) {
  const lost = w.state === "lost";
  return h("tr", { class: lost ? "lost" : "" },
    h("td", {}, w.id),
    h("td", {}, h("span", { class: `pill ${w.state}` }, w.state)),
    h("td", { class: "num" }, lost ? "—" : count(w.user_count)),
    h("td", { class: "num" }, count(w.cores)),
    h("td", { class: "num" }, lost ? "—" : `${w.cpu_usage.toFixed(1)}%`),
    h("td", { class: "num" }, lost ? "—" : bytes(w.memory_usage)),
    h("td", {}, ago(w.last_heartbeat_ms, now)));
}

export default function workers(ctx) {
  const scale = scalePanel(ctx);
  const { table: el, tbody } = table(COLUMNS, { id: "workers-table" });
  const placeholder = empty("No workers have connected.");
  const list = h("div", { class: "card" }, h("h3", {}, "Workers"), h("div", { class: "scroll" }, el), placeholder);
  let timer = 0;
  let visible = false;

  return {
    el: h("div", {}, scale.el, list),
    show() {
      visible = true;
      scale.refresh();
      timer = setInterval(scale.refresh, 2000);
    },
    hide() { visible = false; clearInterval(timer); },
    update(live) {
      const now = live.summary.now_ms;
      fill(tbody, live.workers.map((w) => workerRow(w, now)));
      placeholder.hidden = live.workers.length > 0;
      if (visible) scale.connected(live.summary.worker_count);
    },
  };
}
