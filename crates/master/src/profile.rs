//! Load profiles: how many users a run should have at each moment. Pure
//! arithmetic on elapsed time (no clock, no I/O), so the coordinator's
//! once-a-second tick asks "what now?" and tests ask with made-up instants.
//!
//! A profile is a list of stages, k6 style: each ramps linearly from the
//! previous stage's users (0 before the first) to its own over its
//! duration; a stage with an explicit spawn rate instead asks for its users
//! at once at that rate (Locust's `LoadTestShape` semantics).

use std::time::Duration;

/// One stage of a profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub users: u32,
    /// None: ramp linearly over the stage; Some: ask for `users` at once,
    /// started (or stopped) at this many per second.
    pub spawn_rate: Option<f64>,
    /// Empty: all user types.
    pub user_types: Vec<String>,
}

/// What a run follows over time instead of a fixed user count.
#[derive(Debug, Clone, PartialEq)]
pub enum Profile {
    Stages(Vec<Stage>),
    /// The script's `swarmer.shape(function(ctx) ... end)`: Lua, so it is
    /// not arithmetic the coordinator can do. [`crate::ext::start_run`]
    /// asks it for every target; the run's numbers are its last answer.
    Function,
}

/// A corner of the planned users' line (time since the profile started).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PlanPoint {
    pub time_ms: u64,
    pub users: u32,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// What the run should be asked for now.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub users: u32,
    pub spawn_rate: f64,
    pub user_types: Vec<String>,
    /// A linear ramp: the caller may raise the rate so users that fell
    /// behind (a slow worker, a hold after a ramp) reach the target within
    /// the step; a stage's explicit rate is kept as given.
    pub catch_up: bool,
}

/// The lowest spawn rate a linear ramp asks for: a hold (no change) still
/// needs a positive rate, so a worker that lost users gets them back.
const MIN_RAMP_RATE: f64 = 1.0;

impl Profile {
    /// The target at `elapsed` since the profile started, for a caller that
    /// asks again `step` later; `None` once the profile has ended.
    ///
    /// In a linear stage the target is the plan at `elapsed + step` (at most
    /// the stage's end) and the rate reaches it within `step`, so the actual
    /// users follow the plan one step behind at worst, never overshooting.
    pub fn target_at(&self, elapsed: Duration, step: Duration) -> Option<Target> {
        let stages = self.stages()?;
        let (index, start) = stage_at(stages, elapsed)?;
        let stage = &stages[index];
        if let Some(rate) = stage.spawn_rate {
            return Some(Target {
                users: stage.users,
                spawn_rate: rate,
                user_types: stage.user_types.clone(),
                catch_up: false,
            });
        }
        let from = if index == 0 {
            0
        } else {
            stages[index - 1].users
        };
        let into = elapsed - start;
        let now = interpolate(from, stage, into);
        // Ahead into the next stage too when it is a linear one of the same
        // types: a tick just before a hold ends must already start the
        // ramp-down, or the users would trail the plan by up to a step.
        let crosses = into + step > stage.duration
            && stages
                .get(index + 1)
                .is_some_and(|n| n.spawn_rate.is_none() && n.user_types == stage.user_types);
        let next = if crosses {
            self.planned_users(elapsed + step)
                .unwrap_or_else(|| f64::from(stages.last().map_or(0, |s| s.users)))
        } else {
            interpolate(from, stage, (into + step).min(stage.duration))
        };
        let step_secs = step.as_secs_f64().max(1e-3);
        Some(Target {
            users: next.round() as u32,
            spawn_rate: ((next - now).abs() / step_secs).max(MIN_RAMP_RATE),
            user_types: stage.user_types.clone(),
            catch_up: true,
        })
    }

    /// The users the plan wants at exactly `elapsed` (for charts and the
    /// history's target column); `None` once the profile has ended.
    pub fn planned_users(&self, elapsed: Duration) -> Option<f64> {
        let stages = self.stages()?;
        let (index, start) = stage_at(stages, elapsed)?;
        let stage = &stages[index];
        if stage.spawn_rate.is_some() {
            return Some(f64::from(stage.users));
        }
        let from = if index == 0 {
            0
        } else {
            stages[index - 1].users
        };
        Some(interpolate(from, stage, elapsed - start))
    }

    /// The stage running at `elapsed` (0-based) and the time left in the
    /// whole profile; `None` once it has ended.
    pub fn position(&self, elapsed: Duration) -> Option<(usize, Duration)> {
        let stages = self.stages()?;
        let (index, _) = stage_at(stages, elapsed)?;
        Some((index, self.total().saturating_sub(elapsed)))
    }

    /// How long the whole profile lasts (zero for a function: unknown).
    pub fn total(&self) -> Duration {
        self.stages()
            .map_or(Duration::ZERO, |s| s.iter().map(|s| s.duration).sum())
    }

    /// The whole plan as the corners of its line: users at each time since
    /// the start, linear in between, from 0 at 0 to the end of the last
    /// stage (a stage with a spawn rate jumps at its start). Empty for a
    /// shape function, whose plan is made as the run goes.
    pub fn plan(&self) -> Vec<PlanPoint> {
        let Some(stages) = self.stages() else {
            return Vec::new();
        };
        let mut points = vec![PlanPoint {
            time_ms: 0,
            users: 0,
        }];
        let mut start = Duration::ZERO;
        for stage in stages {
            let end = start + stage.duration;
            if stage.spawn_rate.is_some() {
                points.push(PlanPoint {
                    time_ms: millis(start),
                    users: stage.users,
                });
            }
            points.push(PlanPoint {
                time_ms: millis(end),
                users: stage.users,
            });
            start = end;
        }
        points
    }

    /// The stages; `None` for a shape function, whose plan is not known
    /// ahead.
    pub fn stages(&self) -> Option<&[Stage]> {
        match self {
            Profile::Stages(stages) => Some(stages),
            Profile::Function => None,
        }
    }
}

/// The profile a script's `swarmer.shape` declares: its stages, or its
/// function (run by the master's extension engine).
pub fn from_script(shape: &script::declare::shape::ShapeInfo) -> Profile {
    use script::declare::shape::ShapeInfo;
    let ShapeInfo::Stages { stages } = shape else {
        return Profile::Function;
    };
    let stages = stages
        .iter()
        .map(|s| Stage {
            duration: Duration::from_millis(s.duration_ms),
            users: s.users,
            spawn_rate: s.spawn_rate,
            user_types: s.user_types.clone(),
        })
        .collect();
    Profile::Stages(stages)
}

/// The stage that `elapsed` falls in and when it started.
fn stage_at(stages: &[Stage], elapsed: Duration) -> Option<(usize, Duration)> {
    let mut start = Duration::ZERO;
    for (i, stage) in stages.iter().enumerate() {
        let end = start + stage.duration;
        if elapsed < end {
            return Some((i, start));
        }
        start = end;
    }
    None
}

fn interpolate(from: u32, stage: &Stage, into: Duration) -> f64 {
    let dur = stage.duration.as_secs_f64();
    if dur <= 0.0 {
        return f64::from(stage.users);
    }
    let frac = (into.as_secs_f64() / dur).clamp(0.0, 1.0);
    f64::from(from) + (f64::from(stage.users) - f64::from(from)) * frac
}

/// Why a `--stages` text cannot be read (the value rules are checked
/// afterwards by [`crate::validate::stages`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StagesSyntaxError {
    #[error("no stages given; expected e.g. 30s:100,2m:100,30s:0")]
    Empty,
    #[error("stage {index} {text:?} is not DURATION:USERS (e.g. 30s:100)")]
    Shape { index: usize, text: String },
    #[error("stage {index} {text:?}: {problem}")]
    Duration {
        index: usize,
        text: String,
        problem: String,
    },
    #[error(
        "stage {index} {text:?}: the user count must be a whole number of 0 or more, got {got:?}"
    )]
    Users {
        index: usize,
        text: String,
        got: String,
    },
}

/// Reads `30s:100,2m:100,30s:0` (stages numbered from 1 in errors).
pub fn parse_stages(text: &str) -> Result<Vec<Stage>, StagesSyntaxError> {
    if text.trim().is_empty() {
        return Err(StagesSyntaxError::Empty);
    }
    text.split(',')
        .enumerate()
        .map(|(i, part)| parse_stage(i + 1, part.trim()))
        .collect()
}

fn parse_stage(index: usize, text: &str) -> Result<Stage, StagesSyntaxError> {
    let Some((dur, users)) = text.split_once(':') else {
        return Err(StagesSyntaxError::Shape {
            index,
            text: text.into(),
        });
    };
    let duration = parse_duration(dur.trim()).map_err(|problem| StagesSyntaxError::Duration {
        index,
        text: text.into(),
        problem,
    })?;
    let users = users
        .trim()
        .parse::<u32>()
        .map_err(|_| StagesSyntaxError::Users {
            index,
            text: text.into(),
            got: users.trim().into(),
        })?;
    Ok(Stage {
        duration,
        users,
        spawn_rate: None,
        user_types: vec![],
    })
}

/// `30s`, `2m`, `1h30m` or plain seconds, like `--run-time`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{e}; expected a duration such as 30s, 5m or 1h30m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn stage(d: u64, users: u32) -> Stage {
        Stage {
            duration: Duration::from_secs(d),
            users,
            spawn_rate: None,
            user_types: vec![],
        }
    }

    const STEP: Duration = Duration::from_secs(1);

    #[test]
    fn a_linear_ramp_aims_one_step_ahead_at_the_rate_that_gets_there() {
        let p = Profile::Stages(vec![stage(10, 100)]);
        let t = p.target_at(secs(0.0), STEP).unwrap();
        assert_eq!((t.users, t.spawn_rate), (10, 10.0));
        let t = p.target_at(secs(4.0), STEP).unwrap();
        assert_eq!((t.users, t.spawn_rate), (50, 10.0));
        // The last step stops at the stage's end, not past it.
        let t = p.target_at(secs(9.5), STEP).unwrap();
        assert_eq!(t.users, 100);
        assert!((t.spawn_rate - 5.0).abs() < 1e-9, "{}", t.spawn_rate);
        assert_eq!(p.target_at(secs(10.0), STEP), None);
    }

    #[test]
    fn ramps_up_hold_and_down_follow_the_previous_stage() {
        let p = Profile::Stages(vec![stage(30, 100), stage(120, 100), stage(30, 0)]);
        assert_eq!(p.total(), secs(180.0));
        assert_eq!(p.planned_users(secs(15.0)), Some(50.0));
        assert_eq!(p.planned_users(secs(100.0)), Some(100.0));
        assert_eq!(p.planned_users(secs(165.0)), Some(50.0));
        let hold = p.target_at(secs(60.0), STEP).unwrap();
        assert_eq!((hold.users, hold.spawn_rate), (100, MIN_RAMP_RATE));
        // Just before the hold ends, the ramp-down has already begun.
        let turn = p.target_at(secs(149.5), STEP).unwrap();
        assert_eq!(turn.users, 98);
        assert!(
            (turn.spawn_rate - 5.0 / 3.0).abs() < 1e-9,
            "{}",
            turn.spawn_rate
        );
        let down = p.target_at(secs(160.0), STEP).unwrap();
        assert_eq!(down.users, 63);
        assert_eq!(p.position(secs(160.0)), Some((2, secs(20.0))));
        assert_eq!(p.position(secs(180.0)), None);
        assert_eq!(p.target_at(secs(180.0), STEP), None);
    }

    #[test]
    fn the_plan_is_the_corners_of_the_line_to_the_end() {
        let mut jump = stage(5, 40);
        jump.spawn_rate = Some(20.0);
        let p = Profile::Stages(vec![stage(10, 100), jump, stage(10, 0)]);
        let corners: Vec<(u64, u32)> = p.plan().iter().map(|p| (p.time_ms, p.users)).collect();
        assert_eq!(
            corners,
            [
                (0, 0),
                (10_000, 100),
                (10_000, 40),
                (15_000, 40),
                (25_000, 0)
            ]
        );
        assert_eq!(corners.last().unwrap().0, millis(p.total()));
        assert!(Profile::Function.plan().is_empty());
    }

    #[test]
    fn a_stage_with_a_rate_asks_for_its_users_at_once() {
        let mut fast = stage(10, 40);
        fast.spawn_rate = Some(20.0);
        fast.user_types = vec!["Buy".into()];
        let p = Profile::Stages(vec![stage(5, 10), fast]);
        let t = p.target_at(secs(5.0), STEP).unwrap();
        assert_eq!(t.users, 40);
        assert_eq!(t.spawn_rate, 20.0);
        assert_eq!(t.user_types, vec!["Buy".to_string()]);
    }

    #[test]
    fn stages_parse_like_k6() {
        let s = parse_stages("30s:100, 2m:100,30s:0").unwrap();
        assert_eq!(s, vec![stage(30, 100), stage(120, 100), stage(30, 0)]);
        assert_eq!(parse_stages("90:5").unwrap(), vec![stage(90, 5)]);
    }

    #[test]
    fn bad_stage_text_names_the_stage() {
        assert_eq!(parse_stages(" "), Err(StagesSyntaxError::Empty));
        let e = parse_stages("30s:10,abc").unwrap_err().to_string();
        assert!(
            e.starts_with("stage 2 \"abc\" is not DURATION:USERS"),
            "{e}"
        );
        let e = parse_stages("30s:-5").unwrap_err().to_string();
        assert!(e.contains("whole number of 0 or more, got \"-5\""), "{e}");
        let e = parse_stages("30s:1.5").unwrap_err().to_string();
        assert!(e.contains("got \"1.5\""), "{e}");
        let e = parse_stages("-30s:5").unwrap_err().to_string();
        assert!(e.starts_with("stage 1 \"-30s:5\": "), "{e}");
    }
}
