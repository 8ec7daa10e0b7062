//! The life of a flag (create, update, toggle, archive, history, revert, delete) and listing
//! pages and filters.

use crate::support::inproc::InProcess;
use crate::support::table::{assert_table, row};
use crate::support::*;
use flagwire_proto::v1::*;
use tonic::Code;

const KEY: &str = "new-checkout";

fn get(key: &str) -> GetFlagRequest {
    GetFlagRequest { key: key.into() }
}

fn delete(key: &str) -> DeleteFlagRequest {
    DeleteFlagRequest {
        key: key.into(),
        reason: String::new(),
    }
}

fn toggle(key: &str, environment: &str, expected_version: u64) -> SetFlagEnabledRequest {
    SetFlagEnabledRequest {
        force: false,
        key: key.into(),
        environment: environment.into(),
        enabled: true,
        expected_version,
        reason: String::new(),
    }
}

fn archive(key: &str, archived: bool) -> ArchiveFlagRequest {
    ArchiveFlagRequest {
        force: false,
        key: key.into(),
        archived,
        reason: String::new(),
    }
}

fn revert(version: u64, expected_version: u64) -> RevertFlagRequest {
    RevertFlagRequest {
        force: false,
        key: KEY.into(),
        version,
        expected_version,
        reason: String::new(),
    }
}

fn update(flag: Flag, expected_version: u64) -> UpdateFlagRequest {
    UpdateFlagRequest {
        force: false,
        flag: Some(flag),
        expected_version,
        reason: String::new(),
    }
}

async fn list(admin: &mut Admin, include_archived: bool) -> Vec<Flag> {
    let request = ListFlagsRequest {
        include_archived,
        ..Default::default()
    };
    admin.list_flags(request).await.unwrap().into_inner().flags
}

#[tokio::test]
async fn flags_lifecycle() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    let flag = create_flag(&mut admin, bool_flag(KEY, &["production"])).await;
    assert_eq!(flag.version, 1);
    assert!(flag.create_time.is_some());

    // Update: with the version read.
    let mut next = flag.clone();
    next.description = "checkout v2".into();
    let updated = admin
        .update_flag(UpdateFlagRequest {
            reason: "copy".into(),
            ..update(next.clone(), 1)
        })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap();
    assert_eq!(
        (updated.version, updated.description.as_str()),
        (2, "checkout v2")
    );

    // Toggle, archive, unarchive.
    let on = set_enabled(&mut admin, KEY, "production", true).await;
    assert!(on.environments["production"].enabled);
    assert_eq!(on.version, 3);
    let archived = admin.archive_flag(archive(KEY, true)).await.unwrap();
    assert!(archived.into_inner().flag.unwrap().archived);
    let listed = list(&mut admin, false).await;
    assert!(listed.is_empty(), "archived flags are hidden by default");
    assert_eq!(list(&mut admin, true).await.len(), 1);
    admin.archive_flag(archive(KEY, false)).await.unwrap();

    // History and revert.
    let versions = admin
        .list_flag_versions(ListFlagVersionsRequest { key: KEY.into() })
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(
        versions.iter().map(|f| f.version).collect::<Vec<_>>(),
        [5, 4, 3, 2, 1]
    );
    let reverted = admin
        .revert_flag(RevertFlagRequest {
            reason: "bad".into(),
            ..revert(1, 5)
        })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap();
    assert_eq!(reverted.version, 6);
    assert_eq!(reverted.description, "");
    assert!(!reverted.environments["production"].enabled);

    // A flag that depends on it.
    let mut dependent = bool_flag("dependent", &["production"]);
    let config = dependent.environments.get_mut("production").unwrap();
    config.prerequisites = vec![Prerequisite {
        flag_key: KEY.into(),
        variant: "on".into(),
    }];
    create_flag(&mut admin, dependent).await;

    let dup = CreateFlagRequest {
        flag: Some(flag.clone()),
        reason: String::new(),
    };
    let rows = vec![
        row("creating it again")
            .sends(dup)
            .answers(Code::AlreadyExists, "flag \"new-checkout\" already exists"),
        row("getting an unknown flag")
            .sends(get("missing"))
            .answers(Code::NotFound, "flag \"missing\""),
        row("an update from a stale version, naming both")
            .sends(update(next.clone(), 1))
            .answers(
                Code::FailedPrecondition,
                "is at version 6, the request expected 1",
            ),
        row("updating an unknown flag")
            .sends(update(bool_flag("ghost", &[]), 1))
            .answers(Code::NotFound, "flag \"ghost\""),
        row("a toggle in an unknown environment")
            .sends(toggle(KEY, "mars", 0))
            .answers(Code::NotFound, "environment \"mars\""),
        row("a toggle from a stale version")
            .sends(toggle(KEY, "production", 1))
            .answers(Code::FailedPrecondition, "the request expected 1"),
        row("archiving an unknown flag")
            .sends(archive("nope", true))
            .answers(Code::NotFound, "flag \"nope\""),
        row("the history of an unknown flag")
            .sends(ListFlagVersionsRequest { key: "nope".into() })
            .answers(Code::NotFound, "flag \"nope\""),
        row("reverting to a version that never was")
            .sends(revert(99, 0))
            .answers(Code::NotFound, "version 99"),
        row("a revert from a stale version")
            .sends(revert(1, 2))
            .answers(Code::FailedPrecondition, "the request expected 2"),
        row("archiving a flag another one requires, naming it")
            .sends(archive(KEY, true))
            .answers(
                Code::FailedPrecondition,
                "is a prerequisite of flag \"dependent\", which would then fail it everywhere",
            ),
        row("deleting a flag another one requires")
            .sends(delete(KEY))
            .answers(
                Code::FailedPrecondition,
                "is a prerequisite of flag \"dependent\"",
            ),
    ];
    assert_table(&mut admin, &rows).await;

    // Archive and delete: the dependent first.
    admin
        .archive_flag(archive("dependent", true))
        .await
        .unwrap();
    admin.archive_flag(archive(KEY, true)).await.unwrap();
    admin.delete_flag(delete("dependent")).await.unwrap();
    admin.delete_flag(delete(KEY)).await.unwrap();
    let rows = vec![
        row("deleting a deleted flag")
            .sends(delete(KEY))
            .answers(Code::NotFound, "flag \"new-checkout\""),
        row("getting a deleted flag")
            .sends(get(KEY))
            .answers(Code::NotFound, "flag \"new-checkout\""),
        row("toggling a deleted flag")
            .sends(toggle(KEY, "production", 0))
            .answers(Code::NotFound, "flag \"new-checkout\""),
    ];
    assert_table(&mut admin, &rows).await;
    // Re-created flags continue the version sequence, so history stays unambiguous.
    let again = create_flag(&mut admin, bool_flag(KEY, &[])).await;
    assert_eq!(again.version, 8, "6, the archive 7, then this");
}

#[tokio::test]
async fn list_flags_pages_and_filters() {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    for i in 0u32..25 {
        let mut flag = bool_flag(&format!("flag-{i:02}"), &[]);
        flag.tags = if i.is_multiple_of(2) {
            vec!["even".into()]
        } else {
            vec!["odd".into()]
        };
        create_flag(&mut admin, flag).await;
    }
    create_flag(&mut admin, bool_flag("other", &[])).await;
    let mut keys = Vec::new();
    let mut token = String::new();
    loop {
        let page = admin
            .list_flags(ListFlagsRequest {
                page_size: 10,
                page_token: token,
                key_prefix: "flag-".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.flags.len() <= 10);
        keys.extend(page.flags.into_iter().map(|f| f.key));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(keys.len(), 25);
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    let even = admin
        .list_flags(ListFlagsRequest {
            tags: vec!["even".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(even.flags.len(), 13);
}
