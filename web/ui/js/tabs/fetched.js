// A tab showing one table fetched from the API: loaded when shown, and
// again when the live stream's change key moves (or every few seconds,
// since counts inside a row change without the key changing). Failures and
// Exceptions are such tabs; they differ only in what they fetch and draw.

import { h, fill, table, empty } from "../dom.js";

const REFRESH_MS = 5000;

// spec: { id, columns, emptyText, path, field, row(item) -> <tr>, key(live) -> string, what }
export default function fetchedTable(ctx, spec) {
  const { table: el, tbody } = table(spec.columns, { id: spec.id });
  const placeholder = empty(spec.emptyText);
  const root = h("div", { class: "card" }, h("div", { class: "scroll" }, el), placeholder);
  let visible = false;
  let seen = null;
  let last = 0;

  async function load() {
    last = Date.now();
    try {
      const rows = (await ctx.api.get(spec.path))[spec.field];
      fill(tbody, rows.map(spec.row));
      placeholder.hidden = rows.length > 0;
    } catch (e) {
      ctx.toast(`Cannot load ${spec.what}: ${e.message}`, true);
    }
  }

  return {
    el: root,
    show() { visible = true; load(); },
    hide() { visible = false; },
    update(live) {
      const key = spec.key(live);
      if (visible && (key !== seen || Date.now() - last > REFRESH_MS)) { seen = key; load(); }
    },
  };
}
