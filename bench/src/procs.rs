//! CPU seconds of the stack's processes, from /proc (all threads, user and system time).
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Clone)]
pub struct Procs {
    /// Each name's processes (the worker may be several), their CPU summed.
    pids: BTreeMap<String, Vec<u32>>,
    ticks_per_second: f64,
}

impl Procs {
    /// The worker, the API and the Temporal dev server, as `make up` recorded them.
    pub fn from_pid_dir(dir: &Path) -> Self {
        let mut pids = BTreeMap::new();
        for (name, file) in [
            ("worker", "worker.pid"),
            ("api", "api.pid"),
            ("temporal", "temporal.pid"),
        ] {
            let pid = std::fs::read_to_string(dir.join(file))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .filter(|pid| Path::new(&format!("/proc/{pid}/stat")).exists());
            if let Some(pid) = pid {
                pids.insert(name.to_owned(), vec![pid]);
            }
        }
        let ticks_per_second = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(100.0);
        Self {
            pids,
            ticks_per_second,
        }
    }

    /// The same processes, but `name` is `pids` (for the floor's runs, the worker is the
    /// floor's; for the scale-out runs, the bench's own workers).
    pub fn with_pids(&self, name: &str, pids: Vec<u32>) -> Self {
        let mut procs = self.clone();
        procs.pids.insert(name.to_owned(), pids);
        procs
    }

    pub fn describe(&self) -> String {
        if self.pids.is_empty() {
            return "none found (CPU is not measured; run `make up`)".into();
        }
        self.pids
            .iter()
            .map(|(n, p)| format!("{n} pid {p:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// CPU seconds so far of the worker, the API and the Temporal server, of every PostgreSQL
    /// process (`postgres`: the server and its connections, which the pools keep open for the
    /// whole run) and of this bench itself (`bench`, the load generator, on the same cores).
    pub fn cpu_seconds(&self) -> BTreeMap<String, f64> {
        let mut out: BTreeMap<String, f64> = self
            .pids
            .iter()
            .filter_map(|(name, pids)| {
                let each: Option<Vec<f64>> = pids.iter().map(|p| self.cpu(*p, false)).collect();
                Some((name.clone(), each?.iter().sum()))
            })
            .collect();
        let postgres: f64 = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "postgres")
            })
            // With the time of exited children: the postmaster reaps every connection that ends
            // during the run, so its CPU is not lost from the sum (nor the sum made to shrink).
            .filter_map(|pid| self.cpu(pid, true))
            .sum();
        out.insert("postgres".into(), postgres);
        if let Some(me) = self.cpu(std::process::id(), false) {
            out.insert("bench".into(), me);
        }
        out
    }

    /// CPU seconds of `pid`, with those of its exited children when `children`.
    fn cpu(&self, pid: u32, children: bool) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(stat_ticks(&stat, children)? / self.ticks_per_second)
    }
}

/// Clock ticks in a `/proc/PID/stat` line: utime + stime, and cutime + cstime when `children`.
fn stat_ticks(stat: &str, children: bool) -> Option<f64> {
    // Fields after "(comm)": state is 0, utime 11, stime 12, cutime 13, cstime 14.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let fields: &[usize] = if children {
        &[11, 12, 13, 14]
    } else {
        &[11, 12]
    };
    fields.iter().map(|&i| f.get(i)?.parse::<f64>().ok()).sum()
}

/// What the figures were measured on.
pub fn machine() -> serde_json::Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("MemTotal")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .unwrap_or(0);
    serde_json::json!({
        "cpu": cpu,
        "cores": cores,
        "memory_gib": (mem_kb as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields() {
        // A comm with a space and a parenthesis, as /proc allows.
        let stat = "42 (po) stgres) S 1 42 42 0 -1 4194560 100 200 0 0 7 3 20 10 20 0 1 0 5";
        assert_eq!(stat_ticks(stat, false), Some(10.0));
        assert_eq!(stat_ticks(stat, true), Some(40.0));
        assert_eq!(stat_ticks("42 (x) S 1", false), None);
    }
}
