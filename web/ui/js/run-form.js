// The start / change-the-run dialog. Validates in the browser so mistakes
// are caught as they are typed; the server checks everything again.
// The last values started with are remembered in localStorage and filled
// in again (users, rate, host, run time, user types).

import { $, h } from "./dom.js";

const WHOLE = /^\d+$/;
const RUN_TIME = /^\s*(\d+\s*(h|m|min|s)?\s*)+$/i;
const URL_RE = /^https?:\/\/\S+$/;

const REMEMBER_KEY = "swarmer-run-form";

const STAGES = /^\s*[^:,\s]+\s*:\s*\d+\s*(,\s*[^:,\s]+\s*:\s*\d+\s*)*$/;

export function validateRun(values, retune) {
  const problems = {};
  if (!retune && (values.stages || values.use_shape)) {
    // A profile replaces users, spawn rate and run time.
    if (values.stages && !STAGES.test(values.stages)) problems.stages = "Stages look like 30s:100,2m:100,30s:0.";
    if (values.stages && values.use_shape) problems.stages = "Choose the stages or the script's shape, not both.";
    return problems;
  }
  if (!WHOLE.test(values.user_count)) problems.user_count = "Number of users must be a whole number, 0 or more.";
  const rate = Number(values.spawn_rate);
  if (values.spawn_rate === "" || !Number.isFinite(rate) || rate <= 0) {
    problems.spawn_rate = "Spawn rate must be a number above 0.";
  }
  if (!retune) {
    if (values.host && !URL_RE.test(values.host)) problems.host = "Host must start with http:// or https://.";
    if (values.run_time && !RUN_TIME.test(values.run_time)) problems.run_time = "Run time looks like 30s, 5m or 1h20m.";
    if (values.user_types && values.user_types.length === 0) problems.user_types = "Choose at least one user type.";
  }
  return problems;
}

export class RunForm {
  constructor(ctx) {
    this.ctx = ctx;
    this.dialog = $("#run-dialog");
    this.form = $("#run-form");
    this.error = $("#run-error");
    this.types = $("#user-types");
    this.buildTypes(ctx.ui.user_types);
    if (ctx.ui.default_host) this.form.elements.host.placeholder = ctx.ui.default_host;
    // A script with a shape (stages or a function) offers it, checked: it runs it by default.
    if (ctx.ui.shape) {
      $("#shape-choice").hidden = false;
      this.form.elements.use_shape.checked = true;
    }
    this.restore();
    $("#run-cancel").addEventListener("click", () => this.dialog.close());
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.submit(); });
    this.form.addEventListener("input", () => this.check(false));
  }

  buildTypes(types) {
    if (types.length <= 1) { this.types.hidden = true; return; }
    for (const t of types) {
      const box = h("input", { type: "checkbox", name: "user_classes", value: t.name, checked: true });
      this.types.append(h("label", {}, box, `${t.name} `, h("small", {}, `weight ${t.weight}`)));
    }
  }

  /** Fills in the values the last start used, if any were kept. */
  restore() {
    let kept;
    try {
      kept = JSON.parse(localStorage.getItem(REMEMBER_KEY) || "null");
    } catch {
      kept = null;
    }
    if (!kept || typeof kept !== "object") return;
    const el = this.form.elements;
    for (const name of ["user_count", "spawn_rate", "host", "run_time"]) {
      if (typeof kept[name] === "string") el[name].value = kept[name];
    }
    if (Array.isArray(kept.user_types)) {
      for (const box of this.types.querySelectorAll("input")) box.checked = kept.user_types.includes(box.value);
    }
  }

  remember(v) {
    const { user_count, spawn_rate, host, run_time, user_types } = v;
    localStorage.setItem(REMEMBER_KEY, JSON.stringify({ user_count, spawn_rate, host, run_time, user_types }));
  }

  open(retune) {
    this.retune = retune;
    this.dialog.classList.toggle("retune", retune);
    $("#run-title").textContent = retune ? "Change the running test" : "Start a new test";
    $("#run-submit").textContent = retune ? "Apply" : "Start";
    const latest = this.ctx.latest?.summary;
    if (retune && latest) {
      this.form.elements.user_count.value = latest.target_users;
      this.form.elements.spawn_rate.value = latest.spawn_rate;
    } else if (!retune) {
      this.restore();
    }
    this.error.textContent = "";
    this.check(false);
    this.dialog.showModal();
    this.form.elements.user_count.focus();
  }

  values() {
    const el = this.form.elements;
    const checked = [...this.types.querySelectorAll("input:checked")].map((b) => b.value);
    const all = this.types.querySelectorAll("input").length;
    return {
      user_count: el.user_count.value.trim(),
      spawn_rate: el.spawn_rate.value.trim(),
      host: el.host.value.trim(),
      run_time: el.run_time.value.trim(),
      stages: el.stages.value.trim(),
      use_shape: el.use_shape.checked,
      // No choice shown (one type): undefined, which means all types.
      user_types: all === 0 ? undefined : checked,
      all_types: all,
    };
  }

  /** Marks invalid fields; shows the first problem when `report`. */
  check(report) {
    const problems = validateRun(this.values(), this.retune);
    for (const name of ["user_count", "spawn_rate", "host", "run_time", "stages"]) {
      this.form.elements[name].setAttribute("aria-invalid", String(Boolean(problems[name])));
    }
    const first = Object.values(problems)[0];
    if (report || !first) this.error.textContent = first || "";
    return !first;
  }

  async submit() {
    if (!this.check(true)) return;
    const v = this.values();
    const profile = !this.retune && (v.stages || v.use_shape);
    const body = profile ? {} : { users: Number(v.user_count), spawn_rate: Number(v.spawn_rate) };
    if (!this.retune) {
      if (v.host) body.host = v.host;
      if (v.stages) body.stages = v.stages;
      else if (v.use_shape) body.shape = true;
      else if (v.run_time) body.run_time = v.run_time;
      // Every type checked is sent as no choice: all types.
      if (v.user_types && v.user_types.length < v.all_types) body.user_types = v.user_types;
    }
    const button = $("#run-submit");
    button.disabled = true;
    try {
      const result = await this.ctx.api.post("api/v1/run", body);
      if (!this.retune) this.remember(v);
      this.dialog.close();
      this.ctx.toast(result.message);
    } catch (e) {
      this.error.textContent = e.message;
    } finally {
      button.disabled = false;
    }
  }
}
