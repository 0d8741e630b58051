//! The profile clock: once a tick, a run that follows a load profile is
//! retuned to the profile's target (as a UI "edit users" would), and
//! stopped when the profile ends. The arithmetic is in [`crate::profile`].

use std::time::Duration;

use super::run::select_types;
use super::{Coordinator, RunRequest, now_ms};
use crate::error::MasterError;
use crate::profile::{PlanPoint, Profile, Target};
use crate::snapshot::ProfileView;

impl Coordinator {
    /// The request with its profile's first target in place of the fixed
    /// numbers (unchanged without a profile).
    pub(super) fn profile_start(&self, request: RunRequest) -> Result<RunRequest, MasterError> {
        let Some(profile) = request.profile.as_ref().filter(|p| p.stages().is_some()) else {
            // A shape function's first answer is the request's own numbers.
            return Ok(request);
        };
        let target = profile
            .target_at(Duration::ZERO, self.config.heartbeat_interval)
            .ok_or(MasterError::Invalid(crate::validate::RunError::NoStages))?;
        Ok(apply(request, target))
    }

    /// Retunes the run to where its profile is now, or stops it once the
    /// profile has ended.
    pub(super) fn follow_profile(&mut self) {
        if !self.state.is_active() {
            return;
        }
        let Some(run) = &self.run else { return };
        // A shape function is steered from outside ([`crate::ext::start_run`]).
        let Some(profile) = run
            .request
            .profile
            .as_ref()
            .filter(|p| p.stages().is_some())
        else {
            return;
        };
        let elapsed = run.profile_started.elapsed();
        let step = self.config.heartbeat_interval;
        let Some(mut target) = profile.target_at(elapsed, step) else {
            tracing::info!("run {}: its load profile ended", run.id);
            let _ = self.stop();
            return;
        };
        if target.catch_up {
            // Reach the target within the step from where the users are,
            // not only from where the plan was: a hold right after a ramp
            // would otherwise close the last gap at the hold's 1 user/s.
            // The count is as old as the last report: where the users are
            // now is that count moved along the plan since, or a ramp that
            // is on time would look behind and be pushed past its plan.
            let counted: u32 = self.members.live().map(|m| m.status.user_count).sum();
            let plan_now = profile.planned_users(elapsed).unwrap_or(0.0);
            let plan_then = profile
                .planned_users(self.counted_elapsed(run))
                .unwrap_or(plan_now);
            let now_estimate = f64::from(counted) + plan_now - plan_then;
            let gap = (f64::from(target.users) - now_estimate).abs();
            let needed = gap / step.as_secs_f64().max(1e-3);
            target.spawn_rate = target
                .spawn_rate
                .max(needed)
                .min(crate::validate::MAX_SPAWN_RATE);
        }
        let unchanged = target.users == run.request.users
            && target.spawn_rate == run.request.spawn_rate
            && target.user_types == run.request.user_types;
        if unchanged {
            return;
        }
        let request = apply(run.request.clone(), target);
        let per_type = select_types(&self.info, &request);
        if let Some(run) = &mut self.run {
            run.request = request;
            run.per_type = per_type;
        }
        self.state = super::RunState::Spawning;
        self.rebalance(true);
        self.check_spawned();
    }

    /// The users the run aims at, to hold against the actual user count:
    /// for a stage profile, the plan at the instant that count was taken
    /// (workers report it once a report interval, so it is up to that old;
    /// comparing it with the plan of now would show a ramp one report
    /// behind that is not); the requested count otherwise.
    pub(super) fn planned_users(&self) -> u32 {
        let Some(run) = &self.run else { return 0 };
        match &run.request.profile {
            // The function's last answer is its plan.
            Some(Profile::Function) => run.request.users,
            Some(p) => p
                .planned_users(self.counted_elapsed(run))
                .map_or(0, |u| u.round() as u32),
            None => run.request.users,
        }
    }

    /// How far into its profile `run` was when the live workers' user
    /// counts were taken (the oldest of them).
    fn counted_elapsed(&self, run: &super::Run) -> Duration {
        let now = now_ms();
        let lag_ms = now.saturating_sub(self.members.users_counted_ms().unwrap_or(now));
        run.profile_started
            .elapsed()
            .saturating_sub(Duration::from_millis(lag_ms))
    }

    pub(super) fn profile_view(&self) -> Option<ProfileView> {
        let run = self.run.as_ref()?;
        let profile = run.request.profile.as_ref()?;
        let Some(stages) = profile.stages() else {
            return Some(ProfileView {
                kind: "function",
                stage: 0,
                stages: 0,
                time_left_ms: None,
                planned_users: run.request.users,
                plan: Vec::new(),
            });
        };
        let elapsed = run.profile_started.elapsed();
        let (index, left) = profile
            .position(elapsed)
            .unwrap_or((stages.len() - 1, Duration::ZERO));
        let plan = profile
            .plan()
            .into_iter()
            .map(|p| PlanPoint {
                time_ms: run.profile_started_ms.saturating_add(p.time_ms),
                ..p
            })
            .collect();
        Some(ProfileView {
            kind: "stages",
            stage: index + 1,
            stages: stages.len(),
            time_left_ms: Some(u64::try_from(left.as_millis()).unwrap_or(u64::MAX)),
            planned_users: self.planned_users(),
            plan,
        })
    }
}

fn apply(request: RunRequest, target: Target) -> RunRequest {
    RunRequest {
        users: target.users,
        spawn_rate: target.spawn_rate,
        user_types: target.user_types,
        ..request
    }
}
