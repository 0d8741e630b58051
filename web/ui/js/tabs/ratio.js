// Current ratio tab, as Locust's: each user type's share of the users and
// each task's share of its type's picks, then the same shares of the
// whole. The data is Locust's `/tasks` (from the script's weights), so it
// is fetched when the tab is shown.

import { h, fill, percent, empty } from "../dom.js";

/** Nested lists: "75.0% Browse" with its tasks under it. */
function tree(classes, id) {
  const names = Object.keys(classes || {});
  if (names.length === 0) return empty("No user types.");
  return h("ul", { class: "ratio", id }, names.map((name) => {
    const c = classes[name];
    const tasks = Object.entries(c.tasks || {});
    return h("li", {},
      h("span", { class: "ratio-share" }, percent(c.ratio)), " ", h("strong", {}, name),
      tasks.length ? h("ul", {}, tasks.map(([task, t]) =>
        h("li", {}, h("span", { class: "ratio-share" }, percent(t.ratio)), " ", task))) : null);
  }));
}

export default function ratio(ctx) {
  const perClass = h("div", {});
  const total = h("div", {});
  const root = h("div", { class: "charts" },
    h("div", { class: "card" }, h("h3", {}, "Ratio per user type"), perClass),
    h("div", { class: "card" }, h("h3", {}, "Total ratio"), total));

  async function load() {
    try {
      const data = await ctx.api.get("tasks");
      fill(perClass, tree(data.per_class, "ratio-per-class"));
      fill(total, tree(data.total, "ratio-total"));
    } catch (e) {
      ctx.toast(`Cannot load the task ratios: ${e.message}`, true);
    }
  }

  return { el: root, show: load };
}
