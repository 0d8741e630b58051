// Failures tab: failure groups, most frequent first. Fetched when shown and
// whenever the live stream reports a change in the number of groups or
// failures, rather than streamed every second.

import { h, fill, count, clock, table, empty } from "../dom.js";

const COLUMNS = [
  { title: "# Occurrences", num: true },
  { title: "Method" },
  { title: "Name" },
  { title: "Error" },
  { title: "Last seen" },
];

export default function failures(ctx) {
  const { table: el, tbody } = table(COLUMNS, { id: "failures-table" });
  const placeholder = empty("No failures.");
  const root = h("div", { class: "card" }, h("div", { class: "scroll" }, el), placeholder);
  let visible = false;
  let seen = null;
  let last = 0;

  async function load() {
    last = Date.now();
    try {
      const { failures: rows } = await ctx.api.get("api/v1/failures");
      fill(tbody, rows.map((f) => h("tr", {},
        h("td", { class: "num fail" }, count(f.occurrences)),
        h("td", {}, f.method),
        h("td", {}, f.name),
        h("td", { class: "wrap" }, h("pre", {}, f.error)),
        h("td", {}, clock(f.last_seen_ms)))));
      placeholder.hidden = rows.length > 0;
    } catch (e) {
      ctx.toast(`Cannot load failures: ${e.message}`, true);
    }
  }

  return {
    el: root,
    show() { visible = true; load(); },
    hide() { visible = false; },
    update(live) {
      const key = `${live.summary.run_id}:${live.summary.error_groups}:${live.summary.num_failures}`;
      // Counts inside a group change without the key changing: refresh
      // those every few seconds.
      if (visible && (key !== seen || Date.now() - last > 5000)) { seen = key; load(); }
    },
  };
}
