//! No sequence of events ever leaves a flag serving something the release does not explain:
//! applying every transition's changes in order to a model of the environment always gives
//! exactly what `serving` says of the current state, for every flag the release has touched.

use flagwire_core::release::{
    Audience, By, Event, FlagSpec, Phase, Serving, Spec, StageSpec, State, apply, serving,
};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn spec(stages: Vec<(u8, Vec<bool>, bool)>) -> Spec {
    let flags: Vec<FlagSpec> = (0..3)
        .map(|i| FlagSpec {
            key: format!("f{i}"),
            baseline: "off".into(),
        })
        .collect();
    let stages = stages
        .into_iter()
        .map(|(kind, on, approval)| StageSpec {
            audience: match kind % 4 {
                0 => Audience::Share(500),
                1 => Audience::Share(5_000),
                2 => Audience::Segment("internal".into()),
                _ => Audience::Everyone,
            },
            variants: on
                .iter()
                .enumerate()
                .filter(|(_, on)| **on)
                .map(|(i, _)| (format!("f{i}"), "on".to_string()))
                .collect(),
            require_approval: approval,
        })
        .collect();
    Spec { flags, stages }
}

fn event() -> impl Strategy<Value = Event> {
    let by = prop_oneof![Just(By::Judge), Just(By::Person)];
    prop_oneof![
        Just(Event::Start),
        (0usize..5).prop_map(|stage| Event::Approve { stage }),
        by.clone().prop_map(Event::Promote),
        Just(Event::Hold),
        by.clone().prop_map(Event::Rollback),
        (0usize..4, any::<bool>(), by).prop_map(|(i, hold, by)| Event::RollbackFlag {
            flag: format!("f{i}"),
            hold,
            by
        }),
        Just(Event::Pause),
        Just(Event::Resume),
        (0usize..3).prop_map(|i| Event::ForcedWrite {
            flag: format!("f{i}")
        }),
    ]
}

proptest! {
    #[test]
    fn flags_always_serve_what_the_release_explains(
        stages in prop::collection::vec(
            (any::<u8>(), prop::collection::vec(any::<bool>(), 3), any::<bool>()), 1..5),
        events in prop::collection::vec(event(), 0..40),
    ) {
        let spec = spec(stages);
        let mut state = State::default();
        let mut world: BTreeMap<String, Serving> = BTreeMap::new();
        let mut ended = false;
        for e in &events {
            let Ok(t) = apply(&spec, &state, e) else { continue };
            prop_assert!(!ended, "an ended release accepted {e:?}");
            for c in &t.changes {
                world.insert(c.flag.clone(), c.serving.clone());
            }
            state = t.state;
            ended = matches!(state.phase, Phase::Completed | Phase::RolledBack);
            for f in &spec.flags {
                let explained = serving(&spec, &state, f);
                prop_assert_eq!(world.get(&f.key), explained.as_ref(), "flag {} after {:?}", f.key, e);
                if state.rolled_back.contains(&f.key) || state.phase == Phase::RolledBack {
                    prop_assert_eq!(explained, Some(Serving::Fixed("off".into())));
                }
            }
            // A stage is never served past the last, and a started release serves every flag.
            prop_assert!(state.stage.is_none_or(|s| s < spec.stages.len()));
            if state.stage.is_some() {
                prop_assert_eq!(world.len(), spec.flags.len());
            }
        }
    }
}
