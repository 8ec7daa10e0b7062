//! The start-up summary of which flags are on where: one log line per environment, so an
//! operator reading the log of a restart sees what the server serves without querying it.

use crate::catalog::State;

/// Above this many flags in an environment its line gives counts, not names.
pub const MAX_LISTED: usize = 50;

/// One environment's line: `enabled=[a,b] disabled=[c]`, or counts past [`MAX_LISTED`] flags.
pub fn summary(state: &State, environment: &str) -> String {
    let mut enabled = Vec::new();
    let mut disabled = Vec::new();
    for (key, flag) in &state.flags {
        match flag.environments.get(environment) {
            Some(config) if config.enabled => enabled.push(key.as_str()),
            Some(_) => disabled.push(key.as_str()),
            None => {}
        }
    }
    if enabled.len() + disabled.len() > MAX_LISTED {
        format!(
            "enabled_count={} disabled_count={}",
            enabled.len(),
            disabled.len()
        )
    } else {
        format!(
            "enabled=[{}] disabled=[{}]",
            enabled.join(","),
            disabled.join(",")
        )
    }
}

/// Logs every environment's line at `info`.
pub fn log(state: &State) {
    for (key, env) in &state.envs {
        tracing::info!(
            environment = %key,
            revision = env.revision,
            "flag states: {}",
            summary(state, key)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flagwire_proto::v1::{Flag, FlagConfig};

    fn flag(key: &str, envs: &[(&str, bool)]) -> Flag {
        Flag {
            key: key.into(),
            environments: envs
                .iter()
                .map(|(e, on)| {
                    let config = FlagConfig {
                        enabled: *on,
                        ..Default::default()
                    };
                    (e.to_string(), config)
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn names_then_counts() {
        let mut state = State::default();
        for f in [
            flag("a", &[("prod", true), ("test", false)]),
            flag("b", &[("prod", false)]),
            flag("c", &[("test", true)]),
        ] {
            state.flags.insert(f.key.clone(), f);
        }
        assert_eq!(summary(&state, "prod"), "enabled=[a] disabled=[b]");
        assert_eq!(summary(&state, "test"), "enabled=[c] disabled=[a]");
        assert_eq!(summary(&state, "none"), "enabled=[] disabled=[]");
        for i in 0..MAX_LISTED {
            let f = flag(&format!("f{i:02}"), &[("prod", i % 2 == 0)]);
            state.flags.insert(f.key.clone(), f);
        }
        assert_eq!(
            summary(&state, "prod"),
            "enabled_count=26 disabled_count=26"
        );
    }
}
