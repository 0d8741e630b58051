//! An automated WCAG contrast check, run inside the page: every visible
//! element with text of its own (and every text field) is measured, its
//! computed colour against its effective background, and the ones below
//! 4.5:1 are returned, described well enough to find them.
//!
//! The effective background is found by walking up the ancestors and
//! compositing their backgrounds (translucent tints and `opacity` included)
//! until one is opaque, over white if none is. Disabled controls are left
//! out, as WCAG exempts them; so are elements no one can see (no box,
//! `visibility: hidden`, an opacity of 0).

use fantoccini::Client;

/// The WCAG AA minimum for normal text.
pub const MIN_CONTRAST: f64 = 4.5;

const CHECK: &str = r#"
const min = arguments[0];
const parse = (text) => {
  let m = text.match(/^rgba?\(([^)]*)\)$/);
  if (m) {
    const p = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  }
  m = text.match(/^color\(srgb ([^)]*)\)$/);
  if (m) {
    const p = m[1].split(/[\s\/]+/).filter(Boolean).map(Number);
    return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
  }
  throw new Error(`a colour this check cannot read: ${text}`);
};
const over = (top, below) => {
  const a = top[3];
  return [0, 1, 2].map((i) => top[i] * a + below[i] * (1 - a)).concat([1]);
};
const luminance = (c) => {
  const [r, g, b] = c.slice(0, 3).map((v) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const opacity = (el) => {
  let o = 1;
  for (let e = el; e && e.nodeType === 1; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
  return o;
};
const background = (el) => {
  const layers = [];
  for (let e = el; e && e.nodeType === 1; e = e.parentElement) {
    const c = parse(getComputedStyle(e).backgroundColor);
    c[3] *= opacity(e);
    if (c[3] > 0) layers.push(c);
    if (c[3] >= 1) break;
  }
  let bg = [255, 255, 255, 1];
  for (const layer of layers.reverse()) bg = over(layer, bg);
  return bg;
};
const ownText = (el) => {
  if (el.matches("input, select, textarea")) return el.value || "";
  return [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
};
const describe = (el) => {
  let d = el.tagName.toLowerCase();
  if (el.id) d += `#${el.id}`;
  if (typeof el.className === "string" && el.className.trim()) d += `.${el.className.trim().split(/\s+/).join(".")}`;
  const parent = el.parentElement?.closest("[id]");
  return parent ? `${d} in #${parent.id}` : d;
};
const offenders = [];
let checked = 0;
for (const el of document.body.querySelectorAll("*")) {
  if (el.matches("script, style, template, option") || el.closest(":disabled, [hidden]")) continue;
  const text = ownText(el);
  if (!text) continue;
  const style = getComputedStyle(el);
  if (style.visibility !== "visible" || el.getClientRects().length === 0) continue;
  const o = opacity(el);
  if (o === 0) continue;
  const bg = background(el);
  const fg = parse(style.color);
  fg[3] *= o;
  const shown = over(fg, bg);
  const [hi, lo] = [luminance(shown), luminance(bg)].sort((a, b) => b - a);
  const ratio = (hi + 0.05) / (lo + 0.05);
  checked += 1;
  if (ratio < min) {
    const rgb = (c) => `rgb(${c.slice(0, 3).map(Math.round).join(",")})`;
    offenders.push(`${describe(el)} "${text.slice(0, 40)}": ${ratio.toFixed(2)}:1 (${rgb(shown)} on ${rgb(bg)})`);
  }
}
return { checked, offenders };
"#;

/// What the check found on the page as it is now.
pub struct Contrast {
    /// How many text elements were measured (a check of nothing proves
    /// nothing: callers assert it is more than a handful).
    pub checked: u64,
    pub offenders: Vec<String>,
}

pub async fn measure(browser: &Client) -> Contrast {
    let value = browser
        .execute(CHECK, vec![serde_json::json!(MIN_CONTRAST)])
        .await
        .expect("the contrast check runs");
    Contrast {
        checked: value["checked"].as_u64().unwrap_or(0),
        offenders: value["offenders"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default(),
    }
}
