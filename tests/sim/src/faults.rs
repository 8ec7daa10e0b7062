//! SDK reporting faults: what reaches the server's window from a fleet of SDK instances.
//!
//! Each instance sends one report per window with its share of both cohorts (an instance serves
//! canary, control and baseline users alike). A report can be lost (never arrives), late
//! (arrives after the window's watermark: the server drops it and counts it in `late_reports`)
//! or duplicated (a retry of a report that did arrive: the server deduplicates it by report id,
//! so the judge sees exactly what it would without the retry, and only the count moves).

use rand::Rng;

/// Per-window, per-instance fault probabilities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Faults {
    /// SDK instances sharing the traffic equally.
    pub instances: u32,
    /// Probability that an instance's report of a window is lost.
    pub lost: f64,
    /// Probability that it arrives after the watermark.
    pub late: f64,
    /// Probability that a delivered report arrives twice.
    pub duplicated: f64,
}

impl Default for Faults {
    /// Ten well-behaved instances.
    fn default() -> Self {
        Self {
            instances: 10,
            lost: 0.0,
            late: 0.0,
            duplicated: 0.0,
        }
    }
}

/// What became of the reports of one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Delivery {
    /// Reports accepted into the window.
    pub delivered: u32,
    /// Reports dropped as late.
    pub late: u32,
    /// Reports that never arrived.
    pub lost: u32,
    /// Duplicates the server discarded.
    pub duplicates: u32,
}

impl Delivery {
    /// Share of the window's traffic the server received.
    pub fn share(&self, instances: u32) -> f64 {
        f64::from(self.delivered) / f64::from(instances.max(1))
    }
}

impl Faults {
    /// Decides the fate of every instance's report of one window.
    pub fn deliver<R: Rng>(&self, rng: &mut R) -> Delivery {
        let mut d = Delivery::default();
        if self.lost <= 0.0 && self.late <= 0.0 && self.duplicated <= 0.0 {
            // The common case: no draws at all.
            d.delivered = self.instances;
            return d;
        }
        for _ in 0..self.instances {
            let u: f64 = rng.random();
            if u < self.lost {
                d.lost += 1;
            } else if u < self.lost + self.late {
                d.late += 1;
            } else {
                d.delivered += 1;
                if rng.random::<f64>() < self.duplicated {
                    d.duplicates += 1;
                }
            }
        }
        d
    }
}
