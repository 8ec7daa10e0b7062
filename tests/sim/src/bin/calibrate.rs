//! Prints the canary judge's calibration table (markdown) for `BENCHMARKS.md`: one-flag
//! rollouts, then releases of three flags.
//!
//! `cargo run --release -p flagwire-sim --bin calibrate -- [--runs N] [--seed S]
//! [--threads T] [--only NAME,NAME]`

use std::time::Instant;

use flagwire_sim::calibration::{reasons, rows, table};
use flagwire_sim::{Stats, simulate};

struct Args {
    runs: u32,
    seed: u64,
    threads: usize,
    only: Vec<String>,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        runs: 2_000,
        seed: 1,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        only: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--runs" => a.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--threads" => a.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--only" => a.only = value()?.split(',').map(str::to_owned).collect(),
            "-h" | "--help" => {
                return Err(
                    "usage: calibrate [--runs N] [--seed S] [--threads T] [--only NAME,NAME]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let rows: Vec<_> = rows()
        .into_iter()
        .filter(|r| args.only.is_empty() || args.only.contains(&r.scenario.name))
        .collect();
    let mut stats = Vec::new();
    for row in &rows {
        let started = Instant::now();
        let outcomes = simulate(&row.scenario, args.runs, args.seed, args.threads);
        stats.push(Stats::of(&outcomes));
        // Wall time goes to stderr: the table holds only machine-independent numbers.
        eprintln!(
            "{}: {} runs in {:.1} s",
            row.scenario.name,
            args.runs,
            started.elapsed().as_secs_f64()
        );
    }
    println!("Seed {}, {} runs per row.\n", args.seed, args.runs);
    println!("{}", table(&rows, &stats));
    println!("{}", reasons(&rows, &stats));
}
