//! The run's life: starting (or retuning) it, stopping it, and telling
//! each worker its share as workers come and go.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use protocol::{MasterMessage, ScriptBundle, ScriptRef, SpawnPlan};
use script::{ScriptInfo, ScriptSource};

use super::{Coordinator, Run, RunRequest, now_ms};
use crate::current_script::CurrentScript;
use crate::dispatch::{split_across_workers, split_arrivals, users_per_type};
use crate::error::MasterError;
use crate::recorder::ScriptMeta;
use crate::snapshot::{RatePoint, RunState};
use crate::validate;
use script::arrivals::ArrivalSpec;

impl Coordinator {
    pub(super) fn start(&mut self, request: RunRequest) -> Result<(), MasterError> {
        validate::run_request(&request, &self.info, self.config.max_users)?;
        // A profile sets the numbers from its start; it ends the run itself.
        let request = self.profile_start(request)?;
        let deadline = match request.run_time {
            Some(t) => Some(validate::deadline(Instant::now(), t)?),
            None => None,
        };
        if self.members.live_count() == 0 {
            return Err(MasterError::NoWorkers);
        }
        if self.state.is_active()
            && let Some(run) = &mut self.run
        {
            // Retune the running test: same run, new target.
            if deadline.is_some() {
                run.deadline = deadline;
            }
            run.per_type = select_types(&self.info, &request);
            run.request = RunRequest {
                host: run.request.host.clone(),
                ..request
            };
            run.profile_started = Instant::now();
            run.profile_started_ms = now_ms();
            self.state = RunState::Spawning;
            self.rebalance(true);
            return Ok(());
        }
        self.reload_script()?;
        // The script may have changed its user types since the check above.
        validate::user_types(&request.user_types, &self.info)?;
        let per_type = select_types(&self.info, &request);
        let id = self.next_run_id;
        self.next_run_id += 1;
        let now = now_ms();
        self.stats.reset(now);
        self.members.lost_this_run = 0;
        self.members.saturated_this_run.clear();
        if let Ok(mut h) = self.history.write() {
            h.clear();
        }
        tracing::info!(
            "run {id}: {} users at {}/s{}",
            request.users,
            request.spawn_rate,
            request
                .run_time
                .map(|t| format!(" for {t:?}"))
                .unwrap_or_default()
        );
        self.run = Some(Run {
            id,
            deadline,
            request,
            per_type,
            started_ms: now,
            stop_deadline: None,
            profile_started: Instant::now(),
            profile_started_ms: now,
            stop_error: None,
            script: ScriptMeta::new(&self.config.script.path, &self.config.script.code),
            indexes: Default::default(),
            feeders: Default::default(),
        });
        self.state = RunState::Spawning;
        self.rebalance(true);
        Ok(())
    }

    pub(super) fn reload_script(&mut self) -> Result<(), MasterError> {
        if self.uploaded {
            // An uploaded script replaced the file until the next upload.
            return Ok(());
        }
        let Ok(code) = std::fs::read_to_string(&self.config.script.path) else {
            // The script came as text only (tests) or the file is gone: keep it.
            return Ok(());
        };
        let dir = std::path::Path::new(&self.config.script.path)
            .parent()
            .unwrap_or(std::path::Path::new(""));
        if code == self.config.script.code {
            let files = crate::script_files::reread(&self.config.script.files, dir);
            if files == self.config.script.files {
                return Ok(());
            }
            // A changed module is the script's code too: it may declare
            // other types or require other modules, so load it again.
            if !crate::script_files::modules_changed(&self.config.script.files, &files) {
                tracing::info!("the script's files changed; workers get them with this run");
                self.config.script.files = files;
                return Ok(());
            }
        }
        let src = ScriptSource {
            path: self.config.script.path.clone(),
            code,
        };
        let (info, files) = script::inspect_bundle(&src, script::LuaLimits::default())
            .map_err(|e| MasterError::Script(e.to_string()))?;
        tracing::info!("script {} changed; workers get it with this run", src.path);
        self.config.script.code = src.code;
        self.swap_script_thresholds(&info);
        self.config.script.files = crate::script_files::bundle_files(&files);
        self.info = info;
        self.share_script();
        Ok(())
    }

    /// Makes `script` the one of the next run: refused while a run (or
    /// its stop) is going, so a run never mixes two scripts.
    pub(super) fn replace_script(&mut self, script: CurrentScript) -> Result<(), MasterError> {
        if self.state.is_active() || self.state == RunState::Stopping {
            return Err(MasterError::RunActive);
        }
        self.config.script = script.text.clone();
        self.swap_script_thresholds(&script.info);
        self.info = (*script.info).clone();
        self.files = script.files.clone();
        self.uploaded = true;
        crate::current_script::write(&self.script, script);
        Ok(())
    }

    /// The thresholds judged are the command line's, then the script's
    /// (as the binary resolves them): the old script's are replaced by
    /// the new one's.
    fn swap_script_thresholds(&mut self, new: &ScriptInfo) {
        let thresholds = &mut self.config.thresholds;
        if thresholds.ends_with(&self.info.thresholds) {
            thresholds.truncate(thresholds.len() - self.info.thresholds.len());
        }
        thresholds.extend(new.thresholds.iter().cloned());
    }

    /// Publishes the script (after a reload from disk) to the handles.
    fn share_script(&self) {
        let current = CurrentScript::new(
            self.config.script.clone(),
            self.files.clone(),
            self.info.clone(),
        );
        crate::current_script::write(&self.script, current);
    }

    /// The bundle workers are sent, with any uploaded files.
    fn bundle(&self) -> ScriptBundle {
        let mut bundle = ScriptBundle::from(&self.config.script);
        bundle.files.extend(self.files.iter().cloned());
        bundle
    }

    pub(super) fn stop(&mut self) -> Result<(), MasterError> {
        let Some(run) = &mut self.run else {
            return Err(MasterError::NotRunning);
        };
        if !self.state.is_active() {
            return Err(MasterError::NotRunning);
        }
        tracing::info!("run {}: stopping", run.id);
        run.deadline = None;
        // Checked: a stop timeout too far out means "wait for every worker".
        run.stop_deadline = Instant::now()
            .checked_add(self.config.stop_timeout)
            .and_then(|t| t.checked_add(Duration::from_secs(5)));
        let stop = MasterMessage::Stop {
            run_id: run.id,
            stop_timeout_ms: u64::try_from(self.config.stop_timeout.as_millis())
                .unwrap_or(u64::MAX),
        };
        for m in self.members.live_mut() {
            m.plan.clear();
            let _ = m.tx.try_send(stop.clone());
        }
        self.state = RunState::Stopping;
        self.check_stopped();
        Ok(())
    }

    /// Tells every live worker whose share changed (all of them when
    /// `force`: a new run or a retune) its share of the run. Workers ramp
    /// towards their new share at their part of the spawn rate, so the
    /// total stays at the target through joins and departures.
    pub(super) fn rebalance(&mut self, force: bool) {
        if self.run.is_none() || !self.state.is_active() {
            return;
        }
        // Hashed once here, sent in full once per connection.
        let bundle = self.bundle();
        let hash = bundle.hash();
        let Some(run) = &mut self.run else { return };
        let live: std::collections::BTreeSet<&str> =
            self.members.live().map(|m| m.id.as_str()).collect();
        run.indexes.keep_only(&live);
        let workers: Vec<(String, u32)> = self
            .members
            .live()
            .map(|m| (m.id.clone(), m.cores))
            .collect();
        let total_cores: u32 = workers.iter().map(|(_, c)| c).sum::<u32>().max(1);
        let mut plans = split_across_workers(&run.per_type, &workers);
        let open_types = chosen_types(&self.info, &run.request);
        let elapsed_ms = now_ms().saturating_sub(run.started_ms);
        let mut open_plans = split_arrivals(&open_types, &workers, elapsed_ms);
        for m in self.members.live_mut() {
            let users = plans.remove(&m.id).unwrap_or_default();
            let arrivals = open_plans.remove(&m.id).unwrap_or_default();
            let same_arrivals = m.plan_arrivals.len() == arrivals.len()
                && arrivals.iter().all(|(name, a)| {
                    m.plan_arrivals.get(name).is_some_and(|b| {
                        (a.share, a.max_users, a.pre_allocated)
                            == (b.share, b.max_users, b.pre_allocated)
                    })
                });
            let want =
                users.values().sum::<u32>() + arrivals.values().map(|a| a.max_users).sum::<u32>();
            let (indexes, new_indexes) = run.indexes.assign(&m.id, want);
            if !force && m.plan_run == run.id && m.plan == users && same_arrivals && !new_indexes {
                continue;
            }
            let plan = SpawnPlan {
                run_id: run.id,
                users: users.clone(),
                spawn_rate: run.request.spawn_rate * f64::from(m.cores) / f64::from(total_cores),
                host: run
                    .request
                    .host
                    .clone()
                    .or_else(|| self.config.host.clone()),
                tags: self.config.tags.clone(),
                exclude_tags: self.config.exclude_tags.clone(),
                script: if m.script_sent.as_ref() == Some(&hash) {
                    ScriptRef::by_hash(hash.clone())
                } else {
                    ScriptRef {
                        hash: hash.clone(),
                        bundle: Some(bundle.clone()),
                    }
                },
                arrivals: arrivals.clone(),
                indexes: Some(indexes),
            };
            m.stopped_run = None;
            if m.tx.try_send(MasterMessage::Spawn(Box::new(plan))).is_err() {
                // Left unrecorded, so the next heartbeat's rebalance sends
                // it again.
                tracing::warn!("worker {} is not keeping up; its plan was dropped", m.id);
                self.rebalance_due = true;
                continue;
            }
            m.plan = users;
            m.plan_run = run.id;
            m.script_sent = Some(hash.clone());
            m.plan_arrivals = arrivals
                .into_iter()
                .map(|(name, a)| (name, protocol::ArrivalShare { elapsed_ms: 0, ..a }))
                .collect();
        }
    }

    /// Arrivals per second the run's arrival-driven types ask for now.
    pub(super) fn target_rate(&self) -> f64 {
        let Some(run) = &self.run else { return 0.0 };
        if !self.state.is_active() {
            return 0.0;
        }
        let elapsed_s = now_ms().saturating_sub(run.started_ms) as f64 / 1000.0;
        chosen_types(&self.info, &run.request)
            .iter()
            .filter_map(|t| t.arrivals.as_ref())
            .map(|spec| spec.rate_at(elapsed_s))
            .sum()
    }

    /// The planned arrival rate's corners, from the run's start to as far
    /// as it is known: the end of the arrival stages, or of the profile.
    pub(super) fn rate_plan(&self) -> Vec<RatePoint> {
        let Some(run) = &self.run else {
            return Vec::new();
        };
        let types = chosen_types(&self.info, &run.request);
        let specs: Vec<&ArrivalSpec> = types.iter().filter_map(|t| t.arrivals.as_ref()).collect();
        if specs.is_empty() {
            return Vec::new();
        }
        let mut times_s = vec![0.0];
        for spec in specs.iter().filter(|s| s.rate_per_s.is_none()) {
            let end_s = stages_end_s(spec);
            // The type stops arriving at once when its stages end.
            times_s.extend([end_s, end_s + 0.001]);
            let mut at = 0.0;
            for stage in &spec.stages {
                at += stage.duration_s;
                times_s.push(at);
            }
        }
        if let Some(profile) = &run.request.profile
            && profile.stages().is_some()
        {
            let offset_ms = run.profile_started_ms.saturating_sub(run.started_ms);
            times_s.push(offset_ms as f64 / 1000.0 + profile.total().as_secs_f64());
        }
        times_s.sort_by(f64::total_cmp);
        times_s.dedup();
        times_s
            .into_iter()
            .map(|t_s| RatePoint {
                time_ms: run.started_ms + (t_s * 1000.0).round() as u64,
                rate: specs.iter().map(|s| rate_until(s, t_s)).sum(),
            })
            .collect()
    }

    /// Whether the run is made only of arrival stages that have all ended
    /// (then it ends, as a run following a profile does). A constant rate,
    /// a closed-model type or a profile keeps it going.
    pub(super) fn arrivals_ended(&self) -> bool {
        let Some(run) = &self.run else { return false };
        if run.request.profile.is_some() || !self.state.is_active() {
            return false;
        }
        let types = chosen_types(&self.info, &run.request);
        let ends: Option<Vec<f64>> = types
            .iter()
            .map(|t| {
                t.arrivals
                    .as_ref()
                    .filter(|s| s.rate_per_s.is_none())
                    .map(stages_end_s)
            })
            .collect();
        let Some(last_end_s) = ends.and_then(|e| e.into_iter().reduce(f64::max)) else {
            return false;
        };
        let elapsed_s = now_ms().saturating_sub(run.started_ms) as f64 / 1000.0;
        elapsed_s >= last_end_s
    }

    pub(super) fn check_spawned(&mut self) {
        if self.state != RunState::Spawning {
            return;
        }
        let Some(run) = &self.run else { return };
        let users: u32 = self.members.live().map(|m| m.status.user_count).sum();
        // Arrival-driven types have no user count to reach.
        if users == run.per_type.values().sum::<u32>() {
            tracing::info!(
                "run {}: all {users} users spawned on {}",
                run.id,
                self.members.users_by_worker()
            );
            self.state = RunState::Running;
        }
    }

    pub(super) fn check_stopped(&mut self) {
        if self.state != RunState::Stopping {
            return;
        }
        let Some(run) = &self.run else { return };
        let overdue = run.stop_deadline.is_some_and(|d| Instant::now() >= d);
        let all_done = self.members.live().all(|m| m.stopped_run == Some(run.id));
        if all_done || overdue {
            if overdue && !all_done {
                tracing::warn!(
                    "run {}: some workers did not confirm the stop in time",
                    run.id
                );
            }
            tracing::info!("run {}: stopped", run.id);
            self.state = RunState::Stopped;
            self.publish();
        }
    }
}

/// When an arrival type's stages end, in seconds from the run's start.
fn stages_end_s(spec: &ArrivalSpec) -> f64 {
    spec.stages.iter().map(|s| s.duration_s).sum()
}

/// The rate at `t_s`, keeping a type's last rate at the very end of its
/// stages (where `rate_at` already says 0), so the line reaches its end.
fn rate_until(spec: &ArrivalSpec, t_s: f64) -> f64 {
    if spec.rate_per_s.is_none()
        && let Some(last) = spec.stages.last()
        && (t_s - stages_end_s(spec)).abs() < 1e-9
    {
        return last.rate_per_s;
    }
    spec.rate_at(t_s)
}

/// The run's users per type, limited to the requested types (which
/// [`validate::user_types`] checked).
pub(super) fn select_types(info: &ScriptInfo, request: &RunRequest) -> BTreeMap<String, u32> {
    users_per_type(request.users, &chosen_types(info, request))
}

fn chosen_types(info: &ScriptInfo, request: &RunRequest) -> Vec<script::UserTypeInfo> {
    info.user_types
        .iter()
        .filter(|t| request.user_types.is_empty() || request.user_types.contains(&t.name))
        .cloned()
        .collect()
}
