//! The shapes extensions return, checked: a view's figures, tables and
//! charts ([`ViewData`]) and an action's result ([`ActionOutcome`]).
//!
//! The UI draws these with its own components, so what a script returns
//! is data with a fixed shape, never markup. Every problem is reported with
//! its place (`tables[1].rows[3]: ...`), and sizes are bounded so a
//! runaway view cannot send the browser a million rows.

use serde::Serialize;
use serde_json::{Map, Value as Json};

const MAX_FIGURES: usize = 50;
const MAX_TABLES: usize = 20;
const MAX_COLUMNS: usize = 50;
const MAX_ROWS: usize = 2_000;
const MAX_CHARTS: usize = 20;
const MAX_SERIES: usize = 20;
const MAX_POINTS: usize = 20_000;

/// A table cell or figure value: text, a number, a boolean or null.
pub type Cell = Json;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ViewData {
    pub figures: Vec<Figure>,
    pub tables: Vec<TableData>,
    pub charts: Vec<ChartData>,
    /// A line of text under the figures.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub label: String,
    pub value: Cell,
    pub unit: Option<String>,
    /// "ok", "warn" or "bad": how the UI colours it.
    pub tone: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableData {
    pub title: Option<String>,
    pub columns: Vec<String>,
    /// Each as long as `columns` (shorter rows are padded with null).
    pub rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChartData {
    pub title: Option<String>,
    /// Ascending; 1..n when the script gives none.
    pub x: Vec<f64>,
    /// `x` is unix milliseconds: the UI labels it with clock times.
    pub time: bool,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub label: String,
    /// One per `x`; null is a gap.
    pub values: Vec<Option<f64>>,
}

/// What an action's `run` returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionOutcome {
    pub success: bool,
    pub message: String,
    pub data: Json,
}

type Checked<T> = Result<T, String>;

fn object<'a>(v: &'a Json, at: &str, keys: &[&str]) -> Checked<&'a Map<String, Json>> {
    let Json::Object(map) = v else {
        return Err(format!(
            "{at}: expected a table with keys {}",
            keys.join(", ")
        ));
    };
    if let Some(k) = map.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(format!(
            "{at}: unknown key {k:?} (expected {})",
            keys.join(", ")
        ));
    }
    Ok(map)
}

fn list<'a>(v: Option<&'a Json>, at: &str, max: usize) -> Checked<&'a [Json]> {
    match v {
        None | Some(Json::Null) => Ok(&[]),
        Some(Json::Array(items)) if items.len() <= max => Ok(items),
        Some(Json::Array(items)) => Err(format!(
            "{at}: {} items, more than the {max} a view may show",
            items.len()
        )),
        Some(other) => Err(format!("{at}: expected a list, got {}", kind(other))),
    }
}

fn text(v: Option<&Json>, at: &str) -> Checked<Option<String>> {
    match v {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.clone())),
        Some(Json::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!("{at}: expected text, got {}", kind(other))),
    }
}

fn cell(v: &Json, at: &str) -> Checked<Cell> {
    match v {
        Json::Array(_) | Json::Object(_) => Err(format!(
            "{at}: a cell must be text, a number or a boolean, got {}",
            kind(v)
        )),
        scalar => Ok(scalar.clone()),
    }
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "nil",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "text",
        Json::Array(_) => "a list",
        Json::Object(_) => "a table",
    }
}

impl ViewData {
    /// Checks what `render` returned (already converted to JSON).
    pub fn from_json(v: &Json) -> Checked<ViewData> {
        if v.is_null() {
            return Ok(ViewData::default());
        }
        let map = object(v, "the result", &["figures", "tables", "charts", "note"])?;
        let figures = list(map.get("figures"), "figures", MAX_FIGURES)?
            .iter()
            .enumerate()
            .map(|(i, f)| figure(f, &format!("figures[{}]", i + 1)))
            .collect::<Checked<_>>()?;
        let tables = list(map.get("tables"), "tables", MAX_TABLES)?
            .iter()
            .enumerate()
            .map(|(i, t)| table(t, &format!("tables[{}]", i + 1)))
            .collect::<Checked<_>>()?;
        let charts = list(map.get("charts"), "charts", MAX_CHARTS)?
            .iter()
            .enumerate()
            .map(|(i, c)| chart(c, &format!("charts[{}]", i + 1)))
            .collect::<Checked<_>>()?;
        Ok(ViewData {
            figures,
            tables,
            charts,
            note: text(map.get("note"), "note")?,
        })
    }
}

fn figure(v: &Json, at: &str) -> Checked<Figure> {
    let map = object(v, at, &["label", "value", "unit", "tone"])?;
    let tone = text(map.get("tone"), &format!("{at}.tone"))?;
    if let Some(t) = &tone
        && !["ok", "warn", "bad"].contains(&t.as_str())
    {
        return Err(format!(
            "{at}.tone: expected \"ok\", \"warn\" or \"bad\", got {t:?}"
        ));
    }
    Ok(Figure {
        label: text(map.get("label"), &format!("{at}.label"))?.unwrap_or_default(),
        value: cell(
            map.get("value").unwrap_or(&Json::Null),
            &format!("{at}.value"),
        )?,
        unit: text(map.get("unit"), &format!("{at}.unit"))?,
        tone,
    })
}

fn table(v: &Json, at: &str) -> Checked<TableData> {
    let map = object(v, at, &["title", "columns", "rows"])?;
    let columns: Vec<String> = list(map.get("columns"), &format!("{at}.columns"), MAX_COLUMNS)?
        .iter()
        .enumerate()
        .map(|(i, c)| {
            text(Some(c), &format!("{at}.columns[{}]", i + 1)).map(Option::unwrap_or_default)
        })
        .collect::<Checked<_>>()?;
    let mut rows = Vec::new();
    for (i, row) in list(map.get("rows"), &format!("{at}.rows"), MAX_ROWS)?
        .iter()
        .enumerate()
    {
        let at = format!("{at}.rows[{}]", i + 1);
        let cells = list(Some(row), &at, MAX_COLUMNS)?;
        if cells.len() > columns.len() {
            return Err(format!(
                "{at}: {} cells for {} columns",
                cells.len(),
                columns.len()
            ));
        }
        let mut out: Vec<Cell> = cells
            .iter()
            .enumerate()
            .map(|(j, c)| cell(c, &format!("{at}[{}]", j + 1)))
            .collect::<Checked<_>>()?;
        out.resize(columns.len(), Json::Null);
        rows.push(out);
    }
    Ok(TableData {
        title: text(map.get("title"), &format!("{at}.title"))?,
        columns,
        rows,
    })
}

fn numbers(v: &Json, at: &str) -> Checked<Vec<Option<f64>>> {
    list(Some(v), at, MAX_POINTS)?
        .iter()
        .enumerate()
        .map(|(i, n)| match n {
            Json::Null => Ok(None),
            Json::Number(n) => Ok(n.as_f64()),
            other => Err(format!(
                "{at}[{}]: expected a number, got {}",
                i + 1,
                kind(other)
            )),
        })
        .collect()
}

fn chart(v: &Json, at: &str) -> Checked<ChartData> {
    let map = object(v, at, &["title", "x", "time", "series"])?;
    let mut series = Vec::new();
    for (i, s) in list(map.get("series"), &format!("{at}.series"), MAX_SERIES)?
        .iter()
        .enumerate()
    {
        let at = format!("{at}.series[{}]", i + 1);
        let m = object(s, &at, &["label", "values"])?;
        series.push(Series {
            label: text(m.get("label"), &format!("{at}.label"))?.unwrap_or_default(),
            values: numbers(
                m.get("values").unwrap_or(&Json::Null),
                &format!("{at}.values"),
            )?,
        });
    }
    let longest = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let x: Vec<f64> = match map.get("x") {
        None | Some(Json::Null) => (1..=longest).map(|i| i as f64).collect(),
        Some(v) => numbers(v, &format!("{at}.x"))?
            .into_iter()
            .enumerate()
            .map(|(i, n)| n.ok_or_else(|| format!("{at}.x[{}]: must not be nil", i + 1)))
            .collect::<Checked<_>>()?,
    };
    if x.windows(2).any(|w| w[1] < w[0]) {
        return Err(format!("{at}.x: values must be in ascending order"));
    }
    if let Some(s) = series.iter().find(|s| s.values.len() != x.len()) {
        return Err(format!(
            "{at}: series {:?} has {} values for {} x values",
            s.label,
            s.values.len(),
            x.len()
        ));
    }
    let time = match map.get("time") {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "{at}.time: expected a boolean, got {}",
                kind(other)
            ));
        }
    };
    Ok(ChartData {
        title: text(map.get("title"), &format!("{at}.title"))?,
        x,
        time,
        series,
    })
}

impl ActionOutcome {
    /// Checks what `run` returned: nil (done), a message, or
    /// `{ ok = bool, message = text, data = anything }`.
    pub fn from_json(v: &Json) -> Checked<ActionOutcome> {
        let done = |message: String| ActionOutcome {
            success: true,
            message,
            data: Json::Null,
        };
        match v {
            Json::Null => return Ok(done("Done".into())),
            Json::String(s) => return Ok(done(s.clone())),
            _ => {}
        }
        let map = object(v, "the result", &["ok", "message", "data"])?;
        let success = match map.get("ok") {
            None | Some(Json::Null) => true,
            Some(Json::Bool(b)) => *b,
            Some(other) => {
                return Err(format!(
                    "the result's ok: expected true or false, got {}",
                    kind(other)
                ));
            }
        };
        let message = text(map.get("message"), "the result's message")?
            .unwrap_or_else(|| if success { "Done" } else { "Failed" }.to_string());
        Ok(ActionOutcome {
            success,
            message,
            data: map.get("data").cloned().unwrap_or(Json::Null),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_view_is_checked_and_normalised() {
        let v = ViewData::from_json(&json!({
            "figures": [{ "label": "Worst", "value": "/x", "tone": "bad" }],
            "tables": [{ "columns": ["a", "b"], "rows": [["x", 1], ["y"]] }],
            "charts": [{ "series": [{ "label": "s", "values": [1, null, 3] }] }],
        }))
        .unwrap();
        assert_eq!(v.tables[0].rows[1], vec![json!("y"), Json::Null]);
        assert_eq!(v.charts[0].x, vec![1.0, 2.0, 3.0]);
        assert_eq!(
            ViewData::from_json(&Json::Null).unwrap(),
            ViewData::default()
        );
    }

    #[test]
    fn view_problems_name_their_place() {
        let e = |v: Json| ViewData::from_json(&v).unwrap_err();
        assert_eq!(
            e(json!({ "tables": [{ "columns": ["a"], "rows": [[{ "x": 1 }]] }] })),
            "tables[1].rows[1][1]: a cell must be text, a number or a boolean, got a table"
        );
        assert_eq!(
            e(json!({ "tabels": [] })),
            "the result: unknown key \"tabels\" (expected figures, tables, charts, note)"
        );
        assert_eq!(
            e(json!({ "charts": [{ "x": [1, 2], "series": [{ "label": "s", "values": [1] }] }] })),
            "charts[1]: series \"s\" has 1 values for 2 x values"
        );
        assert_eq!(
            e(json!({ "figures": [{ "label": "a", "tone": "red" }] })),
            "figures[1].tone: expected \"ok\", \"warn\" or \"bad\", got \"red\""
        );
    }

    #[test]
    fn action_results() {
        let ok = ActionOutcome::from_json(&Json::Null).unwrap();
        assert!(ok.success);
        let failed = ActionOutcome::from_json(&json!({ "ok": false, "data": [1] })).unwrap();
        assert_eq!((failed.success, failed.message.as_str()), (false, "Failed"));
        assert!(ActionOutcome::from_json(&json!({ "sucess": true })).is_err());
    }
}
