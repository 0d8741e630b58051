// What every uPlot chart of the page shares: a time axis whose labels are
// short HH:MM:SS on whole seconds, spaced so they never overlap (uPlot's
// default splits a young run's first minute into sub-seconds, each labelled
// with the same second), and a legend that shows each series' latest value
// rather than "--" until the pointer hovers the chart.

const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });

const pad = (n) => String(n).padStart(2, "0");

/** "21:13:05" for a time in ms since the epoch, in local time. */
export function hms(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// Tick steps in seconds: whole seconds up to a day, so no two labels are
// the same second.
const STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

/** The x axis of a time chart, from a base axis style. */
export function timeAxis(base) {
  return {
    ...base,
    // Room for "00:00:00" and a gap at any width (1024 px included).
    space: 90,
    incrs: STEPS_S,
    values: (u, splits) => {
      const labels = splits.map((v) => hms(v * 1000));
      // What was drawn, on the chart's root, for whoever checks the axis.
      const xs = splits.map((v) => u.valToPos(v, "x"));
      const gaps = xs.slice(1).map((x, i) => x - xs[i]);
      u.root.dataset.xLabels = labels.join(" ");
      u.root.dataset.xGapPx = gaps.length ? String(Math.round(Math.min(...gaps))) : "";
      return labels;
    },
  };
}

/** The latest non-empty value of series `i` in uPlot's `data`. */
function latest(data, i) {
  const values = data[i] || [];
  for (let k = values.length - 1; k >= 0; k -= 1) {
    if (values[k] !== null && values[k] !== undefined) return values[k];
  }
  return null;
}

/**
 * A series' legend value: the hovered point's, else the series' latest, so
 * the legend reads as the current figures. `time` for the x series.
 */
export function legendValue(time = false) {
  return (u, v, sidx) => {
    const value = v ?? latest(u.data, sidx);
    if (value === null || value === undefined) return "—";
    return time ? hms(value * 1000) : nf.format(value);
  };
}

/** Refreshes the legend after new data unless the pointer is on the chart. */
export function refreshLegend(plot) {
  if (plot.cursor.left == null || plot.cursor.left < 0) plot.setLegend({ idx: null });
}
