//! A subscriber that falls behind the hub's buffer resynchronises from a snapshot, and never
//! blocks writers. In-process over real sled, so the stream can be left unpolled on purpose.

use flagwire_proto::v1::watch_response::Event;
use flagwire_proto::v1::*;
use flagwire_server::catalog::{Catalog, CatalogOptions, Meta};
use flagwire_server::service::watch_stream::WatchStream;
use flagwire_server::store::sled_store::SledStore;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn lagging_subscriber_gets_a_fresh_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let options = CatalogOptions {
        change_log_retention: 100,
        hub_capacity: 4,
        ..CatalogOptions::default()
    };
    let catalog = Arc::new(Catalog::open(store, options).unwrap());
    let meta = Meta::default();
    catalog
        .create_environment(
            &meta,
            Environment {
                key: "production".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let flag = Flag {
        key: "a".into(),
        r#type: ValueType::Boolean as i32,
        variants: vec![Variant {
            key: "on".into(),
            value: Some(FlagValue {
                kind: Some(flag_value::Kind::BoolValue(true)),
            }),
            description: String::new(),
        }],
        ..Default::default()
    };
    catalog.create_flag(&meta, flag).await.unwrap();
    let hour = Duration::from_secs(3600);
    let mut slow = WatchStream::open(Arc::clone(&catalog), "", "production", 0, hour).unwrap();
    let mut fast = WatchStream::open(Arc::clone(&catalog), "", "production", 0, hour).unwrap();
    for stream in [&mut slow, &mut fast] {
        assert!(matches!(
            stream.next().await.unwrap().unwrap().event,
            Some(Event::Snapshot(_))
        ));
    }

    // 20 writes while `slow` reads nothing: writers are not held up by it...
    for i in 0u64..20 {
        catalog
            .set_flag_enabled(&meta, "a", "production", i.is_multiple_of(2), 0, false)
            .await
            .unwrap();
        // ...and `fast`, which keeps up, sees every change in order.
        let event = fast.next().await.unwrap().unwrap().event;
        assert!(matches!(event, Some(Event::Change(Change { revision, .. })) if revision == i + 2));
    }
    // `slow` lost its place in the 4-deep buffer: it gets a snapshot at the latest revision.
    match slow.next().await.unwrap().unwrap().event {
        Some(Event::Snapshot(s)) => assert_eq!(s.revision, 21),
        other => panic!("expected a resync snapshot, got {other:?}"),
    }
    // Then carries on with live changes, no duplicates of what the snapshot covered.
    catalog
        .set_flag_enabled(&meta, "a", "production", true, 0, false)
        .await
        .unwrap();
    match slow.next().await.unwrap().unwrap().event {
        Some(Event::Change(c)) => assert_eq!(c.revision, 22),
        other => panic!("expected revision 22, got {other:?}"),
    }
}
