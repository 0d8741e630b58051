// The run's state where it cannot be misread: the run clock in the header
// (elapsed, and remaining when a run time is set, as the CLI's live line),
// a banner while the live stream from the master is lost (the figures on
// screen are frozen since the last update), the failure count on the
// Failures tab, the confirmation before a reset wipes a finished run, and
// the About line with the version.

import { $, h, count } from "./dom.js";
import { hms } from "./chart-axis.js";

/** "01:05", or "1:01:05" from an hour on, as the CLI writes it. */
export function clockText(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const pad = (n) => String(n).padStart(2, "0");
  const mm = `${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm}` : mm;
}

/**
 * The header's run clock. Shown from a run's start; frozen at its last
 * value once the run stops (the server's clock goes on), hidden before any.
 */
export function renderClock(summary) {
  const box = $("#fig-clock-box");
  const el = $("#fig-clock");
  if (!box || !el) return;
  const running = ["spawning", "running", "stopping"].includes(summary.state);
  if (!summary.run_started_ms || summary.state === "ready") { box.hidden = true; return; }
  if (!running) return;
  const elapsed = summary.now_ms - summary.run_started_ms;
  box.hidden = false;
  if (summary.run_time_ms) {
    const left = Math.max(0, summary.run_time_ms - elapsed);
    el.textContent = `${clockText(elapsed)} · ${clockText(left)} left`;
    el.title = `Elapsed ${clockText(elapsed)} of ${clockText(summary.run_time_ms)}`;
  } else {
    el.textContent = clockText(elapsed);
    el.title = "Elapsed; the run goes on until stopped";
  }
}

/** The lost-connection banner, shown and hidden by the live stream. */
export class ConnectionBanner {
  constructor() {
    this.el = h("div", { id: "connection-lost", class: "banner", role: "alert", hidden: true });
    document.body.insertBefore(this.el, $("#panels"));
    this.lastUpdateMs = 0;
  }

  updated() {
    this.lastUpdateMs = Date.now();
    this.el.hidden = true;
  }

  lost() {
    const since = this.lastUpdateMs ? `data frozen since ${hms(this.lastUpdateMs)}` : "no data yet";
    this.el.textContent = `Connection to the master lost: ${since}. Reconnecting…`;
    this.el.hidden = false;
  }
}

/** The number of failures on the Failures tab, as Locust's. */
export function renderFailureBadge(summary) {
  const tab = $("#tab-failures");
  if (!tab) return;
  let badge = tab.querySelector(".badge");
  const n = summary.num_failures || 0;
  if (!n) { badge?.remove(); return; }
  if (!badge) {
    badge = h("span", { class: "badge", id: "failure-badge" });
    tab.append(badge);
  }
  badge.textContent = count(n);
  badge.title = `${count(n)} failed requests`;
}

/** True when a reset may go ahead: a finished run's figures need a yes. */
export function confirmReset(summary) {
  if (!summary || summary.state !== "stopped" || !summary.num_requests) return true;
  return window.confirm(`Reset the statistics? The finished run's ${count(summary.num_requests)} requests will be wiped from the table and the charts.`);
}

/** The About line at the foot of the page: version and where to read more. */
export function renderAbout(ui) {
  const el = h("footer", { class: "about", id: "about" },
    `Swarmer ${ui.version}`, " · ",
    h("a", { href: "api/v1/openapi.json" }, "API description"));
  document.body.insertBefore(el, $("#run-dialog"));
}
