// The page's entry point: loads the UI description from the API, builds
// the tabs it lists, fills the header, and applies live updates from the
// server-sent event stream to every view.

import { $, fill, h, count, rate, percent } from "./dom.js";
import * as api from "./api.js";
import { RunForm } from "./run-form.js";
import { renderThresholds } from "./thresholds.js";
import { renderClock, ConnectionBanner, renderFailureBadge, confirmReset, renderAbout } from "./run-state.js";
import statistics from "./tabs/statistics.js";
import charts from "./tabs/charts.js";
import phases from "./tabs/phases.js";
import failures from "./tabs/failures.js";
import exceptions from "./tabs/exceptions.js";
import workers from "./tabs/workers.js";
import logs from "./tabs/logs.js";
import downloads from "./tabs/downloads.js";
import ratio from "./tabs/ratio.js";
import runHistory from "./tabs/history.js";
import script from "./tabs/script.js";
import { extView, extActions } from "./tabs/ext.js";

// Views the page draws itself, by tab id. The tab list comes from the
// server, so views added later (e.g. by scripts) only need a renderer here.
const BUILTINS = { statistics, charts, phases, failures, exceptions, ratio, workers, logs, script, history: runHistory, downloads };
// Views the script adds, by tab kind; the server renders their data.
const KINDS = { "ext-view": extView, "ext-actions": extActions };

const toastEl = $("#toast");
let toastTimer = 0;
function toast(message, bad = false) {
  toastEl.textContent = message;
  toastEl.className = `toast show${bad ? " bad" : ""}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toastEl.className = "toast"; }, bad ? 6000 : 2500);
}

function unsupported(tab) {
  return { el: h("div", { class: "card" }, h("p", { class: "empty" }, `This page cannot show the view “${tab.title}”.`)) };
}

function buildTabs(ctx) {
  const nav = $("#tabs");
  const panels = $("#panels");
  const views = new Map();
  for (const tab of ctx.ui.tabs) {
    const factory = tab.kind === "builtin" ? BUILTINS[tab.id] : KINDS[tab.kind];
    const view = factory ? factory(ctx, tab) : unsupported(tab);
    const panel = h("section", {
      class: "panel", id: `panel-${tab.id}`, role: "tabpanel", "aria-labelledby": `tab-${tab.id}`, tabindex: "0",
    }, view.el);
    const button = h("button", {
      type: "button", role: "tab", id: `tab-${tab.id}`, "aria-controls": `panel-${tab.id}`,
      onclick: () => select(tab.id),
    }, tab.title);
    nav.append(button);
    panels.append(panel);
    views.set(tab.id, { view, panel, button });
  }
  let current = null;
  // On a narrow screen the tab strip scrolls sideways: keep the selected
  // tab in it (without scrolling the page, as scrollIntoView would).
  function reveal(button) {
    if (!button) return;
    const strip = nav.getBoundingClientRect();
    const tab = button.getBoundingClientRect();
    if (tab.left < strip.left) nav.scrollLeft -= strip.left - tab.left;
    else if (tab.right > strip.right) nav.scrollLeft += tab.right - strip.right;
  }
  function select(id) {
    if (!views.has(id)) id = ctx.ui.tabs[0]?.id;
    for (const [key, v] of views) {
      const on = key === id;
      v.panel.classList.toggle("active", on);
      v.button.setAttribute("aria-selected", String(on));
      // The ARIA tab pattern: Tab reaches the selected tab only; the
      // arrow keys move between tabs.
      v.button.tabIndex = on ? 0 : -1;
      if (on && key !== current) v.view.show?.();
      if (!on && key === current) v.view.hide?.();
    }
    current = id;
    reveal(views.get(id)?.button);
    if (location.hash !== `#${id}`) history.replaceState(null, "", `#${id}`);
  }
  nav.addEventListener("keydown", (event) => {
    const ids = [...views.keys()];
    const at = ids.indexOf(current);
    const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: ids.length - 1 }[event.key];
    if (to === undefined || !ids.length) return;
    event.preventDefault();
    const id = ids[(to + ids.length) % ids.length];
    select(id);
    views.get(id).button.focus();
  });
  window.addEventListener("hashchange", () => select(location.hash.slice(1)));
  // Tabs change width after the first layout (fonts, the failure badge):
  // keep the selected one in view when they do.
  const resized = new ResizeObserver(() => reveal(views.get(current)?.button));
  for (const v of views.values()) resized.observe(v.button);
  select(location.hash.slice(1));
  return views;
}

function renderHeader(summary) {
  const state = $("#fig-state");
  state.textContent = summary.state;
  state.className = `pill ${summary.state}`;
  $("#fig-host").textContent = summary.host || "from the script";
  $("#fig-host").title = summary.host || "Each user type uses the host its script gives";
  const active = summary.state === "spawning" || summary.state === "running";
  // While ramping, show where the run is heading.
  const users = active && summary.user_count !== summary.target_users
    ? `${count(summary.user_count)} / ${count(summary.target_users)}` : count(summary.user_count);
  $("#fig-users").textContent = users;
  // A load profile: which stage, and how long until it ends the run.
  const profile = active ? summary.profile : null;
  $("#fig-profile-box").hidden = !profile;
  if (profile && profile.kind === "function") {
    $("#fig-profile").textContent = `shape function · ${count(profile.planned_users)} users`;
  } else if (profile) {
    const left = Math.ceil(profile.time_left_ms / 1000);
    $("#fig-profile").textContent = `stage ${profile.stage}/${profile.stages} · ${left} s left`;
  }
  // A run a failure stopped (a shape function that raised) says why.
  const stopError = active ? null : summary.stop_error;
  $("#fig-stop-error-box").hidden = !stopError;
  $("#fig-stop-error").textContent = stopError || "";
  $("#fig-stop-error").title = stopError || "";
  fill($("#fig-workers"), count(summary.worker_count),
    summary.lost_workers ? h("small", { class: "note bad" }, ` (${summary.lost_workers} lost)`) : null);
  renderClock(summary);
  renderFailureBadge(summary);
  $("#fig-rps").textContent = rate(summary.current_rps);
  $("#fig-fail").textContent = percent(summary.fail_ratio);
  $("#fig-dropped-box").hidden = !summary.dropped_iterations;
  $("#fig-dropped").textContent = count(summary.dropped_iterations || 0);
  $("#start-button").hidden = active;
  $("#edit-button").hidden = !active;
  $("#stop-button").hidden = !active && summary.state !== "stopping";
  $("#stop-button").disabled = summary.state === "stopping";
  document.title = active ? `Swarmer · ${summary.state} · ${rate(summary.current_rps)} RPS` : "Swarmer";
}

// The theme button toggles dark on and off (aria-pressed). Until it is
// pressed the page follows the system, live; a choice is remembered.
function setupTheme() {
  const button = $("#theme-button");
  const system = window.matchMedia("(prefers-color-scheme: dark)");
  const saved = () => {
    const mode = localStorage.getItem("swarmer-theme");
    return mode === "light" || mode === "dark" ? mode : null;
  };
  const apply = () => {
    const mode = saved() || (system.matches ? "dark" : "light");
    document.documentElement.dataset.theme = mode;
    button.setAttribute("aria-pressed", String(mode === "dark"));
    button.title = mode === "dark" ? "Dark theme: on" : "Dark theme: off";
    window.dispatchEvent(new Event("swarmer-theme"));
  };
  button.addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme === "dark";
    localStorage.setItem("swarmer-theme", dark ? "light" : "dark");
    apply();
  });
  system.addEventListener("change", apply);
  apply();
}

function connect(ctx, views) {
  const live = $("#live");
  const banner = new ConnectionBanner();
  const source = new EventSource("api/v1/events");
  source.addEventListener("open", () => { live.className = "live on"; live.title = "Live"; });
  source.addEventListener("error", () => { live.className = "live off"; live.title = "Reconnecting…"; banner.lost(); });
  source.addEventListener("update", (event) => {
    banner.updated();
    const data = JSON.parse(event.data);
    const newRun = ctx.latest && ctx.latest.summary.run_id !== data.summary.run_id;
    ctx.latest = data;
    renderHeader(data.summary);
    renderThresholds(data.thresholds);
    for (const { view } of views.values()) view.update?.(data, { newRun });
  });
}

async function main() {
  // Surface the page's own failures instead of leaving a silent blank.
  window.addEventListener("error", (e) => toast(`Page error: ${e.message}`, true));
  window.addEventListener("unhandledrejection", (e) => toast(`Page error: ${e.reason?.message || e.reason}`, true));
  setupTheme();
  let ui;
  try {
    ui = await api.get("api/v1/ui");
  } catch (e) {
    toast(`Cannot load the UI: ${e.message}`, true);
    return;
  }
  api.setCsrfToken(ui.csrf_token);
  const ctx = { ui, api, toast, latest: null };
  const form = new RunForm(ctx);
  const linked = location.hash !== "";
  const views = buildTabs(ctx);
  renderAbout(ui);
  const state = await api.get("api/v1/state").catch(() => null);
  if (state) renderHeader(state);
  connect(ctx, views);

  $("#start-button").addEventListener("click", () => form.open(false));
  $("#edit-button").addEventListener("click", () => form.open(true));
  $("#stop-button").addEventListener("click", async () => {
    try { toast((await api.post("api/v1/run/stop")).message); } catch (e) { toast(e.message, true); }
  });
  $("#reset-button").addEventListener("click", async () => {
    if (!confirmReset(ctx.latest?.summary ?? state)) return;
    try { toast((await api.post("api/v1/stats/reset")).message); } catch (e) { toast(e.message, true); }
  });
  // A fresh master has nothing to show yet: offer the start form, unless
  // the link asked for a particular tab.
  if (state && state.state === "ready" && !linked) form.open(false);
}

main();
