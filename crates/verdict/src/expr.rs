//! Threshold expressions: `[SCOPE:] FIGURE OP VALUE[UNIT]`, e.g.
//! `p95 < 300ms`, `fail_ratio < 1%`, `GET /item/[id]: p99 <= 1s`.
//!
//! Parsed once, when the flags, config file or script are read, into a
//! [`Threshold`] whose limit is in the figure's canonical unit (ms for
//! times, percent for `fail_ratio`), so evaluation never sees text. A bad
//! expression is a [`ParseError`] naming the expression and the 1-based
//! character position of the problem; no input panics (proptest says so).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Figure {
    /// Response time at this percentile (0 < p <= 100), in ms.
    Percentile(f64),
    Avg,
    Min,
    Max,
    /// Requests per second over the run.
    Rps,
    /// Failures / requests, in percent.
    FailRatio,
    Failures,
    Requests,
    DroppedIterations,
}

/// The comparison that must hold: `observed OP limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "==")]
    Eq,
}

/// Where a threshold looks: the Aggregated row, or the entries a scope
/// text names (`METHOD NAME`, a name alone, or a `swarmer.count` counter),
/// resolved against the stats when evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    Aggregated,
    Named(String),
}

/// One parsed threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// The expression as written, without its scope (trimmed).
    pub expr: String,
    pub scope: Scope,
    pub figure: Figure,
    pub op: Comparison,
    /// In the figure's canonical unit ([`Figure::unit`]).
    pub limit: f64,
}

/// An expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("threshold {expr:?}: at position {position}: {message}")]
pub struct ParseError {
    pub expr: String,
    /// 1-based, in characters.
    pub position: usize,
    pub message: String,
}

/// The name the Aggregated row goes by in scopes and reports.
pub const AGGREGATED: &str = "Aggregated";

/// Percentiles print with up to this many decimals (`p99.99`).
const MAX_PERCENTILE_DECIMALS: usize = 4;

impl Figure {
    /// The unit its observed values and limits are expressed in.
    pub fn unit(self) -> &'static str {
        match self {
            Figure::Percentile(_) | Figure::Avg | Figure::Min | Figure::Max => "ms",
            Figure::Rps => "/s",
            Figure::FailRatio => "%",
            Figure::Failures | Figure::Requests | Figure::DroppedIterations => "",
        }
    }

    fn is_time(self) -> bool {
        self.unit() == "ms"
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Figure::Percentile(p) => write!(f, "p{}", number_text(*p)),
            Figure::Avg => f.write_str("avg"),
            Figure::Min => f.write_str("min"),
            Figure::Max => f.write_str("max"),
            Figure::Rps => f.write_str("rps"),
            Figure::FailRatio => f.write_str("fail_ratio"),
            Figure::Failures => f.write_str("failures"),
            Figure::Requests => f.write_str("requests"),
            Figure::DroppedIterations => f.write_str("dropped_iterations"),
        }
    }
}

impl Comparison {
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        match self {
            Comparison::Lt => observed < limit,
            Comparison::Le => observed <= limit,
            Comparison::Gt => observed > limit,
            Comparison::Ge => observed >= limit,
            Comparison::Eq => observed == limit,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
            Comparison::Eq => "==",
        }
    }
}

impl Scope {
    pub fn name(&self) -> &str {
        match self {
            Scope::Aggregated => AGGREGATED,
            Scope::Named(n) => n,
        }
    }
}

impl fmt::Display for Threshold {
    /// The canonical form, which parses back to an equal threshold.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Scope::Named(name) = &self.scope {
            write!(f, "{name}: ")?;
        }
        let (value, unit) = match self.figure {
            Figure::FailRatio => (self.limit, "%"),
            fig if fig.is_time() => (self.limit, "ms"),
            _ => (self.limit, ""),
        };
        write!(
            f,
            "{} {} {}{unit}",
            self.figure,
            self.op.symbol(),
            number_text(value)
        )
    }
}

/// A number without a needless fraction: 300, 0.5, 99.99.
pub fn number_text(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

impl Threshold {
    /// Parses `expr` for the entries `scope` names (a script's
    /// `["GET /item"] = { "p99 < 1s" }`); the expression may not name a
    /// scope of its own then.
    pub fn parse_scoped(scope: &str, expr: &str) -> Result<Threshold, ParseError> {
        let mut t = Threshold::parse(expr)?;
        if t.scope != Scope::Aggregated {
            return Err(ParseError {
                expr: expr.trim().to_string(),
                position: 1,
                message: format!(
                    "the scope is given twice: {scope:?} and {:?}",
                    t.scope.name()
                ),
            });
        }
        let scope = scope.trim();
        if scope.is_empty() {
            return Err(ParseError {
                expr: expr.trim().to_string(),
                position: 1,
                message: "the scope is empty; name an entry such as \"GET /item\"".into(),
            });
        }
        if scope != AGGREGATED {
            t.scope = Scope::Named(scope.to_string());
        }
        Ok(t)
    }

    /// Parses `[SCOPE:] FIGURE OP VALUE[UNIT]`. The scope is what comes
    /// before the last `:` (names may hold colons; the rest never does).
    pub fn parse(text: &str) -> Result<Threshold, ParseError> {
        let expr = text.trim().to_string();
        let err = |pos: usize, message: String| ParseError {
            expr: expr.clone(),
            position: pos + 1,
            message,
        };
        // Positions count characters of the trimmed expression.
        let chars: Vec<char> = expr.chars().collect();
        if chars.is_empty() {
            return Err(err(
                0,
                "empty expression; expected e.g. \"p95 < 300ms\"".into(),
            ));
        }
        let (scope, body_start) = match chars.iter().rposition(|&c| c == ':') {
            None => (Scope::Aggregated, 0),
            Some(colon) => {
                let name: String = chars[..colon].iter().collect::<String>().trim().to_string();
                if name.is_empty() {
                    return Err(err(
                        colon,
                        "empty scope before ':'; name an entry, e.g. \"GET /item: p95 < 300ms\""
                            .into(),
                    ));
                }
                let scope = if name == AGGREGATED {
                    Scope::Aggregated
                } else {
                    Scope::Named(name)
                };
                (scope, colon + 1)
            }
        };
        let mut cur = Cursor {
            chars: &chars,
            pos: body_start,
        };
        cur.skip_spaces();
        let fig_at = cur.pos;
        let word = cur.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        let figure = figure(&word).map_err(|m| err(fig_at, m))?;
        cur.skip_spaces();
        let op_at = cur.pos;
        let op_text = cur.take_while(|c| matches!(c, '<' | '>' | '=' | '!'));
        let op = comparison(&op_text).map_err(|m| err(op_at, m))?;
        cur.skip_spaces();
        let num_at = cur.pos;
        let num_text = cur.take_while(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+'));
        let value = number(&num_text).map_err(|m| err(num_at, m))?;
        cur.skip_spaces();
        let unit_at = cur.pos;
        let unit = cur.take_while(|c| !c.is_whitespace());
        let limit = limit(figure, value, &unit).map_err(|m| err(unit_at, m))?;
        cur.skip_spaces();
        if cur.pos < chars.len() {
            let rest: String = chars[cur.pos..].iter().collect();
            return Err(err(cur.pos, format!("unexpected {rest:?} after the value")));
        }
        // The scope has its own column in every report.
        let body: String = chars[body_start..].iter().collect();
        Ok(Threshold {
            expr: body.trim().to_string(),
            scope,
            figure,
            op,
            limit,
        })
    }
}

struct Cursor<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Cursor<'_> {
    fn skip_spaces(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.chars.get(self.pos).is_some_and(|&c| keep(c)) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }
}

const FIGURES: &str = "p50..p99.99 (any percentile), avg, min, max, rps, fail_ratio, failures, requests, dropped_iterations";

fn figure(word: &str) -> Result<Figure, String> {
    let fig = match word {
        "avg" => Figure::Avg,
        "min" => Figure::Min,
        "max" => Figure::Max,
        "median" => Figure::Percentile(50.0),
        "rps" => Figure::Rps,
        "fail_ratio" => Figure::FailRatio,
        "failures" => Figure::Failures,
        "requests" => Figure::Requests,
        "dropped_iterations" => Figure::DroppedIterations,
        "" => return Err(format!("expected a figure: {FIGURES}")),
        w => match w.strip_prefix('p') {
            Some(p) => Figure::Percentile(percentile(p)?),
            None => return Err(format!("unknown figure {w:?}; expected {FIGURES}")),
        },
    };
    Ok(fig)
}

fn percentile(text: &str) -> Result<f64, String> {
    let bad = || {
        format!(
            "p{text}: a percentile is p followed by a number above 0 and at most 100, e.g. p95 or p99.9"
        )
    };
    let decimals = text.split_once('.').map_or(0, |(_, frac)| frac.len());
    if text.is_empty()
        || !text.chars().all(|c| c.is_ascii_digit() || c == '.')
        || decimals > MAX_PERCENTILE_DECIMALS
    {
        return Err(bad());
    }
    match text.parse::<f64>() {
        Ok(p) if p > 0.0 && p <= 100.0 => Ok(p),
        _ => Err(bad()),
    }
}

fn comparison(text: &str) -> Result<Comparison, String> {
    Ok(match text {
        "<" => Comparison::Lt,
        "<=" => Comparison::Le,
        ">" => Comparison::Gt,
        ">=" => Comparison::Ge,
        "==" => Comparison::Eq,
        "" => return Err("expected a comparison: <, <=, >, >= or ==".into()),
        other => {
            return Err(format!(
                "unknown comparison {other:?}; expected <, <=, >, >= or =="
            ));
        }
    })
}

fn number(text: &str) -> Result<f64, String> {
    if text.is_empty() {
        return Err("expected a number".into());
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(_) => Err(format!("{text}: the value must not be negative")),
        Err(_) => Err(format!("{text:?} is not a number")),
    }
}

/// The value in the figure's canonical unit, or why the unit does not fit.
fn limit(figure: Figure, value: f64, unit: &str) -> Result<f64, String> {
    let scaled = match (figure, unit) {
        (f, "ms") if f.is_time() => value,
        (f, "s") if f.is_time() => value * 1000.0,
        (f, "") if f.is_time() => {
            return Err(format!(
                "{figure} is a time: give a unit, e.g. {}ms or {}s",
                number_text(value),
                number_text(value)
            ));
        }
        (f, u) if f.is_time() => {
            return Err(format!("unknown unit {u:?} for {figure}; expected ms or s"));
        }
        (Figure::FailRatio, "%") => value,
        // A bare ratio is a fraction, as k6 writes it (`rate<0.01`).
        (Figure::FailRatio, "") if value <= 1.0 => value * 100.0,
        (Figure::FailRatio, "") => {
            return Err(format!(
                "fail_ratio {} is above 1: write a percentage as {}%",
                number_text(value),
                number_text(value)
            ));
        }
        (Figure::FailRatio, u) => {
            return Err(format!(
                "unknown unit {u:?} for fail_ratio; expected % (or a fraction such as 0.01)"
            ));
        }
        (Figure::Rps, "" | "/s") => value,
        (_, "") => value,
        (f, u) => return Err(format!("unknown unit {u:?}: {f} is a count and takes none")),
    };
    if scaled.is_finite() {
        Ok(scaled)
    } else {
        Err(format!("{} is too large", number_text(value)))
    }
}
