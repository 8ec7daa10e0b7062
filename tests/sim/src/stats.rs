//! Many runs of one scenario, and what they add up to.

use flagwire_core::judge::Reason;

use crate::run::{End, Outcome, run};
use crate::scenario::Scenario;

/// The seed of run `index` of the scenario with stream `name` under the base `seed`: every run and
/// every row gets its own stream, and any run can be replayed alone.
pub fn run_seed(seed: u64, name: &str, index: u64) -> u64 {
    // FNV-1a of the name, then splitmix64 to spread nearby seeds apart.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = seed ^ h ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Runs `scenario` `runs` times on `threads` threads; the outcomes come back in run order, so
/// the result does not depend on the thread count.
pub fn simulate(scenario: &Scenario, runs: u32, seed: u64, threads: usize) -> Vec<Outcome> {
    let threads = threads.clamp(1, runs.max(1) as usize);
    let mut slots: Vec<Option<Outcome>> = vec![None; runs as usize];
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..runs as usize)
                        .step_by(threads)
                        .map(|i| (i, run(scenario, run_seed(seed, &scenario.stream, i as u64))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (i, o) in h.join().expect("a simulation thread panicked") {
                slots[i] = Some(o);
            }
        }
    });
    slots
        .into_iter()
        .map(|o| o.expect("every run ran"))
        .collect()
}

/// The figures of one row.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Runs.
    pub runs: u32,
    /// Rollbacks with nothing wrong (yet).
    pub false_rollbacks: u32,
    /// Regressions caught.
    pub detected: u32,
    /// Runs whose regression started (before a false rollback or the horizon ended them).
    pub regressed: u32,
    /// Detection times of the caught ones (ms from the onset), ascending.
    pub detection_ms: Vec<i64>,
    /// Times to 100 % of the runs that got there (ms), ascending.
    pub completed_ms: Vec<i64>,
    /// Runs that ended at the horizon.
    pub at_horizon: u32,
    /// Rollbacks by reason.
    pub rollbacks: Vec<(Reason, u32)>,
    /// Rollbacks decided by a gate, by the gate's name.
    pub gate_rollbacks: Vec<(String, u32)>,
    /// Held windows by reason, all runs together.
    pub holds: Vec<(Reason, u32)>,
    /// Late, lost and duplicate reports, all runs together.
    pub faults: [u64; 3],
}

impl Stats {
    /// Adds up `outcomes`.
    pub fn of(outcomes: &[Outcome]) -> Self {
        let mut s = Stats {
            runs: outcomes.len() as u32,
            ..Stats::default()
        };
        for o in outcomes {
            s.false_rollbacks += u32::from(o.false_rollback());
            s.regressed += u32::from(o.onset_ms.is_some() && !o.false_rollback());
            if let Some(ms) = o.detection_ms() {
                s.detected += 1;
                s.detection_ms.push(ms);
            }
            s.completed_ms.extend(o.completed_ms());
            match o.end {
                End::RolledBack(r) => {
                    bump(&mut s.rollbacks, r, 1);
                    if let Some(g) = &o.gate {
                        match s.gate_rollbacks.iter_mut().find(|(n, _)| n == g) {
                            Some((_, n)) => *n += 1,
                            None => s.gate_rollbacks.push((g.clone(), 1)),
                        }
                    }
                }
                End::Horizon => s.at_horizon += 1,
                End::Completed => {}
            }
            for &(r, n) in &o.holds {
                bump(&mut s.holds, r, n);
            }
            s.faults[0] += o.late_reports;
            s.faults[1] += o.lost_reports;
            s.faults[2] += o.duplicate_reports;
        }
        s.detection_ms.sort_unstable();
        s.completed_ms.sort_unstable();
        s.rollbacks
            .sort_by_key(|&(r, n)| (std::cmp::Reverse(n), r.code()));
        s.holds
            .sort_by_key(|&(r, n)| (std::cmp::Reverse(n), r.code()));
        s.gate_rollbacks
            .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        s
    }

    /// Share of runs falsely rolled back.
    pub fn false_rollback_rate(&self) -> f64 {
        ratio(self.false_rollbacks, self.runs)
    }

    /// Upper end of the 95 % Wilson interval of [`Stats::false_rollback_rate`]: how bad it could
    /// plausibly be given this many runs.
    pub fn false_rollback_upper(&self) -> f64 {
        let (n, p, z) = (
            f64::from(self.runs.max(1)),
            self.false_rollback_rate(),
            1.96,
        );
        let centre = p + z * z / (2.0 * n);
        let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
        (centre + spread) / (1.0 + z * z / n)
    }

    /// Share of runs whose regression was caught (power).
    pub fn power(&self) -> f64 {
        ratio(self.detected, self.runs)
    }

    /// The `q` quantile of the detection time over *all* runs, an uncaught regression counting
    /// as never caught: `None` when fewer than `q` of the runs caught it.
    pub fn detection_quantile(&self, q: f64) -> Option<i64> {
        let rank = ((q * f64::from(self.runs)).ceil() as usize).max(1);
        self.detection_ms.get(rank - 1).copied()
    }

    /// Runs that reached 100 % within `bound_ms`.
    pub fn completed_within(&self, bound_ms: i64) -> u32 {
        self.completed_ms.iter().filter(|&&t| t <= bound_ms).count() as u32
    }
}

fn ratio(a: u32, b: u32) -> f64 {
    if b == 0 {
        0.0
    } else {
        f64::from(a) / f64::from(b)
    }
}

fn bump(counts: &mut Vec<(Reason, u32)>, reason: Reason, n: u32) {
    match counts.iter_mut().find(|(r, _)| *r == reason) {
        Some((_, c)) => *c += n,
        None => counts.push((reason, n)),
    }
}
