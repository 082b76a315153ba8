//! The one measurement routine: phase clocks, calibrated inner loops and per-repetition resources.
//! Mirrors python/mlbench/measure.py: monotonic clock (`Instant`) around the same phase
//! boundaries, minor/major page faults from getrusage(RUSAGE_SELF) around each timed call, peak
//! RSS from VmHWM after a reset through /proc/self/clear_refs, process CPU time from
//! CLOCK_PROCESS_CPUTIME_ID, and start-up as CLOCK_MONOTONIC now minus the runner's spawn time.
use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

/// CLOCK_MONOTONIC in ns, read by the runner just before it spawned this process.
pub const SPAWN_VARIABLE: &str = "MLBENCH_SPAWN_NS";
/// A calibrated sample never exceeds this many calls, whatever min_sample_s asks (pyperf caps too).
pub const MAX_LOOPS: u64 = 1 << 20;

/// Page faults per call of a phase.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Faults {
    pub minor: f64,
    pub major: f64,
}

fn faults() -> (i64, i64) {
    // SAFETY: getrusage writes into the struct we own; RUSAGE_SELF is valid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return (0, 0);
    }
    (usage.ru_minflt, usage.ru_majflt)
}

/// Per-call seconds and page faults per named phase, and the calls (k) each sample took.
#[derive(Debug, Default)]
pub struct PhaseTimer {
    pub timings_s: BTreeMap<String, f64>,
    pub page_faults: BTreeMap<String, Faults>,
    pub loops: BTreeMap<String, u64>,
}

impl PhaseTimer {
    /// Time `work(prepare())` k times, `prepare` untimed (a fresh model per call where the phase
    /// mutates it). With `calibrate_to_s`, double k until one sample lasts at least that long
    /// (pyperf's calibration). Records per-call time and faults; returns the last result.
    pub fn calls<S, T, E>(
        &mut self,
        name: &str,
        mut k: u64,
        calibrate_to_s: Option<f64>,
        mut prepare: impl FnMut() -> Result<S, E>,
        mut work: impl FnMut(S) -> Result<T, E>,
    ) -> Result<T, E> {
        loop {
            let (mut elapsed, mut minor, mut major) = (0.0, 0i64, 0i64);
            let mut result = None;
            for _ in 0..k.max(1) {
                let state = prepare()?;
                let (minor0, major0) = faults();
                let start = Instant::now();
                let out = work(state);
                elapsed += start.elapsed().as_secs_f64();
                let (minor1, major1) = faults();
                minor += minor1 - minor0;
                major += major1 - major0;
                result = Some(out?);
            }
            let done = match calibrate_to_s {
                None => true,
                Some(target) => elapsed >= target || k >= MAX_LOOPS,
            };
            if done {
                let calls = k.max(1) as f64;
                self.timings_s.insert(name.to_string(), elapsed / calls);
                self.page_faults.insert(
                    name.to_string(),
                    Faults { minor: minor as f64 / calls, major: major as f64 / calls },
                );
                self.loops.insert(name.to_string(), k.max(1));
                return Ok(result.expect("at least one call ran"));
            }
            k *= 2;
        }
    }
}

fn monotonic_ns() -> u128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC is valid on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// The runner's pid: tasks die with it (`die_with_runner`).
pub const RUNNER_PID_VARIABLE: &str = "MLBENCH_RUNNER_PID";

/// The kernel kills this task if the runner that started it dies, so no orphan keeps writing
/// records while a resumed run repeats its process. Mirrors python/mlbench/measure.py.
pub fn die_with_runner() {
    let Some(runner) = std::env::var(RUNNER_PID_VARIABLE).ok().and_then(|p| p.parse::<i32>().ok()) else {
        return; // started by hand
    };
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number; getppid has no preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != runner {
            std::process::exit(1); // the runner died before the guard was set
        }
    }
}

/// Seconds from the runner's spawn of this process to now (None when started by hand).
pub fn startup_s() -> Option<f64> {
    let spawned: u128 = std::env::var(SPAWN_VARIABLE).ok()?.parse().ok()?;
    Some(monotonic_ns().saturating_sub(spawned) as f64 / 1e9)
}

/// Reset VmHWM to the current RSS ("5" = clear_refs' reset of the peak, Linux >= 4.0).
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Current VmRSS of this process in MiB (the baseline a repetition starts from), or None.
pub fn rss_mb() -> Option<f64> {
    status_kib("VmRSS:").map(|kib| kib / 1024.0)
}

fn status_kib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse::<f64>().ok()
}

/// VmHWM of this process in MiB, or None where /proc is not available.
pub fn peak_rss_mb() -> Option<f64> {
    status_kib("VmHWM:").map(|kib| kib / 1024.0)
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

    fn sleep(ms: u64) -> Result<(), ()> {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        Ok(())
    }

    #[test]
    fn a_sample_reports_per_call_time() {
        let mut timer = PhaseTimer::default();
        timer.calls("fit", 4, None, || Ok::<_, ()>(()), |_| sleep(2)).unwrap();
        assert_eq!(timer.loops["fit"], 4);
        assert!(timer.timings_s["fit"] >= 0.002 && timer.timings_s["fit"] < 0.008, "{:?}", timer.timings_s);
    }

    #[test]
    fn calibration_doubles_until_a_sample_is_long_enough() {
        let mut timer = PhaseTimer::default();
        timer.calls("fit", 1, Some(0.008), || Ok::<_, ()>(()), |_| sleep(1)).unwrap();
        let k = timer.loops["fit"];
        assert!(k.is_power_of_two() && (8..=16).contains(&k), "k = {k}");
    }

    #[test]
    fn page_faults_see_first_touch() {
        let mut timer = PhaseTimer::default();
        timer
            .calls(
                "fit",
                1,
                None,
                || Ok::<_, ()>(()),
                |_| {
                    let block = vec![1u8; 16 << 20];
                    std::hint::black_box(&block);
                    Ok(())
                },
            )
            .unwrap();
        assert!(timer.page_faults["fit"].minor >= 1000.0, "{:?}", timer.page_faults);
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
