//! This process's CPU and memory use, for heartbeats.

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

pub struct ProcessUsage {
    system: System,
    pid: Pid,
}

impl ProcessUsage {
    pub fn new() -> Self {
        Self {
            system: System::new(),
            pid: Pid::from_u32(std::process::id()),
        }
    }

    /// CPU percent (100 = one core) since the previous call, and resident bytes.
    pub fn sample(&mut self) -> (f32, u64) {
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[self.pid]),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        match self.system.process(self.pid) {
            Some(p) => (p.cpu_usage(), p.memory()),
            None => (0.0, 0),
        }
    }
}
