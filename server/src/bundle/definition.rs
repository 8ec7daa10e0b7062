//! What each kind of object looks like in a bundle: its definition, without versions,
//! revisions, times or rollout progress, so that two servers holding the same definitions
//! export the same bytes.

use flagwire_proto::v1::{Environment, Flag, Release, Rollout, Segment};

/// Key, name and description. An empty name reads as the key, as CreateEnvironment stores it.
pub fn environment(e: &Environment) -> Environment {
    Environment {
        key: e.key.clone(),
        name: if e.name.is_empty() {
            e.key.clone()
        } else {
            e.name.clone()
        },
        description: e.description.clone(),
        ..Environment::default()
    }
}

/// Everything but version and times (`archived` is part of the definition).
pub fn flag(f: &Flag) -> Flag {
    Flag {
        version: 0,
        create_time: None,
        update_time: None,
        ..f.clone()
    }
}

/// Everything but version and update time.
pub fn segment(s: &Segment) -> Segment {
    Segment {
        version: 0,
        update_time: None,
        ..s.clone()
    }
}

/// Id, name, description, environment, flags, stages, guardrails, policy and gates: not state,
/// decisions or evidence, which belong to one run of the release.
pub fn release(r: &Release) -> Release {
    Release {
        id: r.id.clone(),
        name: r.name.clone(),
        description: r.description.clone(),
        environment: r.environment.clone(),
        flags: r.flags.clone(),
        stages: r.stages.clone(),
        guardrails: r.guardrails.clone(),
        policy: r.policy.clone(),
        gates: r.gates.clone(),
        ..Release::default()
    }
}

/// Id, flag, environment, variants, steps, guardrails and policy: not state, decisions or
/// evidence, which belong to one run of the rollout.
pub fn rollout(r: &Rollout) -> Rollout {
    Rollout {
        id: r.id.clone(),
        flag_key: r.flag_key.clone(),
        environment: r.environment.clone(),
        treatment_variant: r.treatment_variant.clone(),
        baseline_variant: r.baseline_variant.clone(),
        steps: r.steps.clone(),
        guardrails: r.guardrails.clone(),
        policy: r.policy.clone(),
        ..Rollout::default()
    }
}
