//! Ports for servers that a test starts by number rather than on port 0 (PostgreSQL and
//! Prometheus take theirs on the command line, and restart on the same one).

use std::hash::{BuildHasher, RandomState};
use std::net::TcpListener;

/// A port that is free now and lies below the kernel's ephemeral range.
///
/// Between this call and the server's bind (and while a test has that server stopped to restart
/// it), the port is nobody's. `scripts/test` runs several suites at once, which open thousands of
/// connections; a port of the ephemeral range (what binding port 0 returns) can meanwhile become
/// the local end of one of them, and the server then fails to start. The kernel never hands out a
/// port below that range by itself, so only another explicit pick could take it, and the picks
/// are spread at random over ten thousand ports.
pub fn quiet_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let first = low.saturating_sub(10_000).max(1024);
    if low <= first + 100 {
        // No room below the range (a kernel configured so): any free port, as before.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        return listener.local_addr().unwrap().port();
    }
    let span = u64::from(low - first);
    // RandomState's keys are random per process: enough to spread picks, without a crate.
    let mut seed = RandomState::new().hash_one(std::process::id());
    for _ in 0..1000 {
        seed = RandomState::new().hash_one(seed);
        let port = first + u16::try_from(seed % span).unwrap();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {first}..{low}");
}
