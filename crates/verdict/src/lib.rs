//! A run's verdict for CI. Threshold expressions (`p95 < 300ms`,
//! `GET /item: fail_ratio < 1%`) are parsed once into [`Threshold`]s,
//! judged against the run's [`stats::RequestStats`] into [`Check`]s, and
//! gathered in a [`Verdict`] that decides the exit code (0 all hold, 3 any
//! crossed) and renders as a console table, JSON and JUnit XML.
//!
//! Pure: no I/O, no async, no Lua. Regression checks made elsewhere (a
//! run against a baseline) are pushed into the same [`Verdict`] as checks
//! of kind [`CheckKind::Regression`] and render unchanged.

#![forbid(unsafe_code)]

mod check;
mod eval;
mod expr;
pub mod render;

pub use check::{Check, CheckKind, EXIT_CROSSED, EXIT_PASSED, Verdict, value_text};
pub use expr::{AGGREGATED, Comparison, Figure, ParseError, Scope, Threshold, number_text};
