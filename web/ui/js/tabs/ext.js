// Tabs the script adds: one per view (rendered by the server from the live
// state, redrawn every two seconds while the tab is shown, with the actions
// that belong to it underneath), and Actions for the others. A script error
// is shown in place of the view; the rest of the page carries on.

import { h, fill, empty } from "../dom.js";
import { figures, dataTable, Chart, errorBox } from "../ext/parts.js";
import { actionCard } from "../ext/action.js";

const REFRESH_MS = 2000;
const PREFIX = "ext-";

let catalog = null;
/** The script's declarations, loaded once for every tab. */
function loadCatalog(ctx) {
  catalog ??= ctx.api.get("api/v1/ext");
  return catalog;
}

function addActions(ctx, box, pick) {
  loadCatalog(ctx)
    .then((cat) => fill(box, cat.actions.filter(pick).map((a) => actionCard(ctx, a))))
    .catch((e) => fill(box, errorBox(`Cannot load the actions: ${e.message}`)));
}

export function extView(ctx, tab) {
  const id = tab.id.slice(PREFIX.length);
  const status = h("div", { class: "ext-status" });
  const content = h("div", { class: "ext-content" });
  const actions = h("div", { class: "ext-actions" });
  const root = h("div", { class: "ext-view", dataset: { view: id, renders: "0" } }, status, content, actions);
  let charts = [];
  let timer = 0;
  let busy = false;
  let renders = 0;
  addActions(ctx, actions, (a) => a.view === id);

  function dropCharts() {
    charts.forEach((c) => c.destroy());
    charts = [];
  }

  function draw(data) {
    fill(status);
    const parts = [];
    if (data.figures.length) parts.push(h("div", { class: "card" }, figures(data.figures)));
    if (data.note) parts.push(h("p", { class: "note ext-note" }, data.note));
    parts.push(...data.tables.map(dataTable));
    while (charts.length > data.charts.length) charts.pop().destroy();
    while (charts.length < data.charts.length) charts.push(new Chart());
    if (charts.length) parts.push(h("div", { class: "charts" }, charts.map((c) => c.el)));
    fill(content, parts.length ? parts : empty("This view has nothing to show yet."));
    data.charts.forEach((c, i) => charts[i].update(c));
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      draw(await ctx.api.get(`api/v1/ext/views/${encodeURIComponent(id)}`));
    } catch (e) {
      // Stale figures next to an error would mislead: show the error alone.
      dropCharts();
      fill(content);
      fill(status, errorBox(e.message));
    } finally {
      busy = false;
      root.dataset.renders = String(++renders);
    }
  }

  new ResizeObserver(() => charts.forEach((c) => c.resize())).observe(root);
  // Colours are read when a chart is made: remake them for a new theme.
  window.addEventListener("swarmer-theme", dropCharts);

  return {
    el: root,
    show() {
      refresh();
      clearInterval(timer);
      timer = setInterval(refresh, REFRESH_MS);
    },
    hide() { clearInterval(timer); },
  };
}

export function extActions(ctx) {
  const box = h("div", { class: "ext-actions" });
  addActions(ctx, box, (a) => !a.view);
  return { el: box };
}
