//! The rules a run request must follow, in one place: the command line,
//! Locust's form, the JSON API and the coordinator all call these, so a
//! value is refused everywhere or nowhere, with the same words.
//!
//! Each [`RunError`]'s `Display` is the problem only ("must be ..."); the
//! caller puts the field's name in front as its user knows it
//! (`--spawn-rate`, `spawn_rate`), found through [`RunError::field`].

use std::time::{Duration, Instant};

use script::ScriptInfo;

use crate::RunRequest;
use crate::profile::{Profile, Stage};

/// Users started per second, over the whole cluster. Far above what any
/// cluster starts usefully (the memory bench asks for 100000), low enough
/// that the arithmetic on it stays exact.
pub const MAX_SPAWN_RATE: f64 = 100_000.0;

/// The longest run time a request may ask for: a year. Longer ones are
/// typing mistakes, and an `Instant` that far out overflows on some systems.
pub const MAX_RUN_TIME: Duration = Duration::from_secs(365 * 24 * 3600);

/// `--max-users` when not given: the most concurrent users a request may
/// ask for. At about 5 KiB per idle user that is 0.5 GB over the cluster;
/// a bigger cluster raises it with `--max-users`.
pub const DEFAULT_MAX_USERS: u32 = 100_000;

/// Which part of a run request a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunField {
    Users,
    SpawnRate,
    RunTime,
    UserTypes,
    Stages,
}

impl RunField {
    /// The JSON API's name for it (also what the coordinator's errors say).
    pub fn json_name(self) -> &'static str {
        match self {
            RunField::Users => "users",
            RunField::SpawnRate => "spawn_rate",
            RunField::RunTime => "run_time",
            RunField::UserTypes => "user_types",
            RunField::Stages => "stages",
        }
    }
}

/// Why a run request breaks a rule.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    #[error("must be at most {max} (the master's --max-users), got {got}")]
    TooManyUsers { got: u32, max: u32 },
    #[error(
        "must be a positive number of users per second, at most {MAX_SPAWN_RATE}, got {}",
        show_rate(*.0)
    )]
    SpawnRate(f64),
    #[error("must be longer than zero")]
    ZeroRunTime,
    #[error("must be at most 365 days, got {}", humantime::format_duration(*.0))]
    RunTimeTooLong(Duration),
    #[error("unknown user type {name:?}; the script defines: {known}")]
    UnknownUserType { name: String, known: String },
    #[error("must list at least one stage")]
    NoStages,
    /// A rule broken by one stage (numbered from 1, as the user counts).
    #[error("stage {index}: {problem}")]
    Stage {
        index: usize,
        problem: Box<RunError>,
    },
    #[error("must last at most 365 days in all, got {}", humantime::format_duration(*.0))]
    StagesTooLong(Duration),
    #[error("the duration must be longer than zero")]
    StageDuration,
}

impl RunError {
    pub fn field(&self) -> RunField {
        match self {
            RunError::TooManyUsers { .. } => RunField::Users,
            RunError::SpawnRate(_) => RunField::SpawnRate,
            RunError::ZeroRunTime | RunError::RunTimeTooLong(_) => RunField::RunTime,
            RunError::UnknownUserType { .. } => RunField::UserTypes,
            RunError::NoStages
            | RunError::Stage { .. }
            | RunError::StagesTooLong(_)
            | RunError::StageDuration => RunField::Stages,
        }
    }
}

/// 1e308 printed in full is 309 digits: keep huge numbers short.
fn show_rate(rate: f64) -> String {
    if rate.is_finite() && rate.abs() >= 1e15 {
        format!("{rate:e}")
    } else {
        rate.to_string()
    }
}

pub fn users(users: u32, max_users: u32) -> Result<u32, RunError> {
    if users > max_users {
        return Err(RunError::TooManyUsers {
            got: users,
            max: max_users,
        });
    }
    Ok(users)
}

pub fn spawn_rate(rate: f64) -> Result<f64, RunError> {
    // NaN fails every comparison, so it is refused here too.
    if rate > 0.0 && rate <= MAX_SPAWN_RATE {
        Ok(rate)
    } else {
        Err(RunError::SpawnRate(rate))
    }
}

pub fn run_time(run_time: Duration) -> Result<Duration, RunError> {
    if run_time.is_zero() {
        Err(RunError::ZeroRunTime)
    } else if run_time > MAX_RUN_TIME {
        Err(RunError::RunTimeTooLong(run_time))
    } else {
        Ok(run_time)
    }
}

/// Every name must be a user type the script defines (none means all).
pub fn user_types(names: &[String], info: &ScriptInfo) -> Result<(), RunError> {
    for name in names {
        if !info.user_types.iter().any(|t| &t.name == name) {
            let known: Vec<&str> = info.user_types.iter().map(|t| t.name.as_str()).collect();
            return Err(RunError::UnknownUserType {
                name: name.clone(),
                known: known.join(", "),
            });
        }
    }
    Ok(())
}

/// Each stage: a duration longer than zero, users within `max_users`, a
/// valid spawn rate if it names one, user types the script defines; and
/// the whole profile no longer than a year.
pub fn stages(stages: &[Stage], info: &ScriptInfo, max_users: u32) -> Result<(), RunError> {
    if stages.is_empty() {
        return Err(RunError::NoStages);
    }
    for (i, stage) in stages.iter().enumerate() {
        let in_stage = |problem: RunError| RunError::Stage {
            index: i + 1,
            problem: Box::new(problem),
        };
        if stage.duration.is_zero() {
            return Err(in_stage(RunError::StageDuration));
        }
        users(stage.users, max_users).map_err(in_stage)?;
        if let Some(rate) = stage.spawn_rate {
            spawn_rate(rate).map_err(in_stage)?;
        }
        user_types(&stage.user_types, info).map_err(in_stage)?;
    }
    let total: Duration = stages.iter().map(|s| s.duration).sum();
    if total > MAX_RUN_TIME {
        return Err(RunError::StagesTooLong(total));
    }
    Ok(())
}

/// All the rules, in the order a user reads the fields.
pub fn run_request(
    request: &RunRequest,
    info: &ScriptInfo,
    max_users: u32,
) -> Result<(), RunError> {
    users(request.users, max_users)?;
    spawn_rate(request.spawn_rate)?;
    if let Some(t) = request.run_time {
        run_time(t)?;
    }
    user_types(&request.user_types, info)?;
    match &request.profile {
        Some(Profile::Stages(s)) => stages(s, info, max_users),
        // Its answers are the request's own users and types, checked above.
        Some(Profile::Function) | None => Ok(()),
    }
}

/// When a run of `run_time` started `now` ends: checked, so no request can
/// make the coordinator panic on an overflowing `Instant`.
pub fn deadline(now: Instant, run_time: Duration) -> Result<Instant, RunError> {
    self::run_time(run_time)?;
    now.checked_add(run_time)
        .ok_or(RunError::RunTimeTooLong(run_time))
}

/// A script of two user types, "Browse" and "Buy": the fixture of every
/// test of these rules, here and in the forms and API that apply them.
#[cfg(test)]
pub(crate) fn two_types_info() -> ScriptInfo {
    let user = |name: &str| script::UserTypeInfo {
        name: name.into(),
        weight: 1,
        fixed_count: None,
        host: None,
        tasks: vec![],
        arrivals: None,
    };
    ScriptInfo {
        user_types: vec![user("Browse"), user("Buy")],
        shape: None,
        thresholds: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ScriptInfo {
        two_types_info()
    }

    #[test]
    fn spawn_rates_are_positive_finite_and_bounded() {
        assert_eq!(spawn_rate(2.5), Ok(2.5));
        assert_eq!(spawn_rate(MAX_SPAWN_RATE), Ok(MAX_SPAWN_RATE));
        for bad in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            1e308,
            MAX_SPAWN_RATE * 2.0,
        ] {
            let e = spawn_rate(bad).unwrap_err();
            assert_eq!(e.field(), RunField::SpawnRate);
        }
        let e = spawn_rate(1e308).unwrap_err().to_string();
        assert!(e.ends_with("got 1e308"), "{e}");
    }

    #[test]
    fn users_are_capped() {
        assert_eq!(users(10, 10), Ok(10));
        assert_eq!(users(0, 10), Ok(0));
        let e = users(u32::MAX, 100).unwrap_err().to_string();
        assert_eq!(
            e,
            "must be at most 100 (the master's --max-users), got 4294967295"
        );
    }

    #[test]
    fn run_times_are_positive_and_at_most_a_year() {
        assert!(run_time(Duration::from_secs(1)).is_ok());
        assert_eq!(run_time(Duration::ZERO), Err(RunError::ZeroRunTime));
        let huge = Duration::from_secs(u64::MAX);
        assert_eq!(run_time(huge), Err(RunError::RunTimeTooLong(huge)));
        assert!(deadline(Instant::now(), huge).is_err());
        assert!(deadline(Instant::now(), MAX_RUN_TIME).is_ok());
    }

    #[test]
    fn user_types_must_exist() {
        assert!(user_types(&[], &info()).is_ok());
        assert!(user_types(&["Buy".into()], &info()).is_ok());
        let e = user_types(&["Nope".into()], &info()).unwrap_err();
        assert_eq!(e.field(), RunField::UserTypes);
        assert!(e.to_string().ends_with("defines: Browse, Buy"), "{e}");
    }

    #[test]
    fn stages_need_a_duration_known_types_and_bounded_users() {
        let stage = |secs: u64, users: u32| Stage {
            duration: Duration::from_secs(secs),
            users,
            spawn_rate: None,
            user_types: vec![],
        };
        assert!(stages(&[stage(1, 10), stage(5, 0)], &info(), 10).is_ok());
        assert_eq!(stages(&[], &info(), 10), Err(RunError::NoStages));
        let e = stages(&[stage(1, 1), stage(0, 1)], &info(), 10).unwrap_err();
        assert_eq!(e.field(), RunField::Stages);
        assert_eq!(
            e.to_string(),
            "stage 2: the duration must be longer than zero"
        );
        let e = stages(&[stage(1, 11)], &info(), 10)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("stage 1: must be at most 10"), "{e}");
        let mut typed = stage(1, 1);
        typed.user_types = vec!["Nope".into()];
        let e = stages(&[typed], &info(), 10).unwrap_err().to_string();
        assert!(e.starts_with("stage 1: unknown user type \"Nope\""), "{e}");
        let mut rated = stage(1, 1);
        rated.spawn_rate = Some(-1.0);
        assert!(stages(&[rated], &info(), 10).is_err());
        let e = stages(&[stage(400 * 24 * 3600, 1)], &info(), 10).unwrap_err();
        assert!(matches!(e, RunError::StagesTooLong(_)), "{e}");
    }

    #[test]
    fn a_request_is_checked_field_by_field() {
        let ok = RunRequest {
            users: 5,
            spawn_rate: 1.0,
            host: None,
            run_time: Some(Duration::from_secs(30)),
            user_types: vec![],
            profile: None,
        };
        assert!(run_request(&ok, &info(), 10).is_ok());
        let zero_time = RunRequest {
            run_time: Some(Duration::ZERO),
            ..ok.clone()
        };
        assert_eq!(
            run_request(&zero_time, &info(), 10),
            Err(RunError::ZeroRunTime)
        );
        let many = RunRequest { users: 11, ..ok };
        assert_eq!(
            run_request(&many, &info(), 10).unwrap_err().field(),
            RunField::Users
        );
    }
}
