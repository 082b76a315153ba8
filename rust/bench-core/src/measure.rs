//! The one measurement routine: phase clocks and per-repetition resources.
//! Mirrors python/mlbench/measure.py: monotonic clock (`Instant`), peak RSS from VmHWM after a
//! reset through /proc/self/clear_refs, process CPU time from CLOCK_PROCESS_CPUTIME_ID.
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Debug, Default)]
pub struct PhaseTimer {
    pub timings_s: BTreeMap<String, f64>,
}

impl PhaseTimer {
    /// Time `work` as phase `name` (phases with the same name add up).
    pub fn phase<T>(&mut self, name: &str, work: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = work();
        *self.timings_s.entry(name.to_string()).or_insert(0.0) += start.elapsed().as_secs_f64();
        out
    }
}

/// Reset VmHWM to the current RSS ("5" = clear_refs' reset of the peak, Linux >= 4.0).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// VmHWM of this process in MiB, or None where /proc is not available.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub fn cpu_time_s() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_PROCESS_CPUTIME_ID is valid on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_accumulate() {
        let mut timer = PhaseTimer::default();
        timer.phase("fit", || std::thread::sleep(std::time::Duration::from_millis(2)));
        timer.phase("fit", || ());
        assert!(timer.timings_s["fit"] >= 0.002);
    }

    #[test]
    fn peak_rss_sees_an_allocation() {
        reset_peak_rss();
        let before = peak_rss_mb().unwrap();
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        assert!(peak_rss_mb().unwrap() >= before + 32.0);
    }
}
