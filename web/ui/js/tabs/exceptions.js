// Exceptions tab: errors raised by the script's own code, with tracebacks
// folded so a long one does not push the rest off screen.

import { h, fill, count, table, empty } from "../dom.js";

const COLUMNS = [
  { title: "Count", num: true },
  { title: "Message" },
  { title: "Traceback" },
  { title: "Nodes" },
];

export default function exceptions(ctx) {
  const { table: el, tbody } = table(COLUMNS, { id: "exceptions-table" });
  const placeholder = empty("No exceptions.");
  const root = h("div", { class: "card" }, h("div", { class: "scroll" }, el), placeholder);
  let visible = false;
  let seen = null;
  let last = 0;

  async function load() {
    last = Date.now();
    try {
      const { exceptions: rows } = await ctx.api.get("api/v1/exceptions");
      fill(tbody, rows.map((x) => h("tr", {},
        h("td", { class: "num" }, count(x.count)),
        h("td", { class: "wrap" }, x.msg),
        h("td", { class: "wrap" }, h("details", {}, h("summary", {}, "Traceback"), h("pre", {}, x.traceback))),
        h("td", { class: "wrap" }, x.nodes))));
      placeholder.hidden = rows.length > 0;
    } catch (e) {
      ctx.toast(`Cannot load exceptions: ${e.message}`, true);
    }
  }

  return {
    el: root,
    show() { visible = true; load(); },
    hide() { visible = false; },
    update(live) {
      const key = `${live.summary.run_id}:${live.summary.exception_count}`;
      // Counts inside a group change without the key changing: refresh
      // those every few seconds.
      if (visible && (key !== seen || Date.now() - last > 5000)) { seen = key; load(); }
    },
  };
}
