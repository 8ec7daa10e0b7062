//! The view of a flag one environment's SDKs receive.

use flagwire_proto::v1::{Flag, FlagConfig, Serve, serve};

/// The configuration an environment without one of its own behaves as: disabled, serving the
/// first variant. The server writes it when a flag is first configured in an environment.
pub fn default_config(flag: &Flag) -> FlagConfig {
    let first = flag
        .variants
        .first()
        .map(|v| v.key.clone())
        .unwrap_or_default();
    FlagConfig {
        enabled: false,
        off_variant: first.clone(),
        default_rule: Some(Serve {
            kind: Some(serve::Kind::Variant(first)),
        }),
        ..Default::default()
    }
}

/// Returns `flag` carrying only `environment`'s configuration (or none, when it has none).
///
/// SDK tokens are bound to one environment, so a stream must not reveal the others' rules.
pub fn project(flag: &Flag, environment: &str) -> Flag {
    let mut out = Flag {
        environments: Default::default(),
        ..flag.clone()
    };
    if let Some(config) = flag.environments.get(environment) {
        out.environments
            .insert(environment.to_owned(), config.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use flagwire_proto::v1::FlagConfig;

    #[test]
    fn keeps_only_the_named_environment() {
        let mut flag = Flag {
            key: "f".into(),
            ..Default::default()
        };
        for env in ["prod", "staging"] {
            flag.environments.insert(
                env.into(),
                FlagConfig {
                    off_variant: env.into(),
                    ..Default::default()
                },
            );
        }
        let p = project(&flag, "prod");
        assert_eq!(p.environments.len(), 1);
        assert_eq!(p.environments["prod"].off_variant, "prod");
        assert!(project(&flag, "dev").environments.is_empty());
    }
}
