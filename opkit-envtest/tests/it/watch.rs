//! Watches: events in order, synthetic ADDED, bookmarks, 410 Gone,
//! selectors, timeouts, and kube-runtime's watcher and reflector.

use crate::support::{configmap, configmaps, env, eventually};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;
use std::time::Duration;

fn name_of(event: &WatchEvent<ConfigMap>) -> (&'static str, String) {
    match event {
        WatchEvent::Added(o) => ("ADDED", o.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Modified(o) => ("MODIFIED", o.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Deleted(o) => ("DELETED", o.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Bookmark(b) => ("BOOKMARK", b.metadata.resource_version.clone()),
        WatchEvent::Error(e) => ("ERROR", e.message.clone()),
    }
}

async fn next(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> (&'static str, String) {
    let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream is open")
        .expect("a valid event");
    name_of(&event)
}

#[tokio::test]
async fn watch_from_a_resource_version_sees_every_change_in_order() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let first = api
        .create(&PostParams::default(), &configmap("before"))
        .await
        .unwrap();
    let rv = first.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &configmap("w"))
        .await
        .unwrap();
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v2"}})),
    )
    .await
    .unwrap();
    api.delete("w", &DeleteParams::default()).await.unwrap();
    assert_eq!(next(&mut stream).await, ("ADDED", "w".into()));
    assert_eq!(next(&mut stream).await, ("MODIFIED", "w".into()));
    assert_eq!(next(&mut stream).await, ("DELETED", "w".into()));
}

#[tokio::test]
async fn watch_from_zero_starts_with_synthetic_added_events() {
    let env = env().await;
    let api = configmaps(&env, "default");
    for name in ["a", "b"] {
        api.create(&PostParams::default(), &configmap(name))
            .await
            .unwrap();
    }
    let mut stream = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    assert_eq!(next(&mut stream).await, ("ADDED", "a".into()));
    assert_eq!(next(&mut stream).await, ("ADDED", "b".into()));
}

#[tokio::test]
async fn a_compacted_resource_version_is_gone() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let old = api
        .create(&PostParams::default(), &configmap("old"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &configmap("newer"))
        .await
        .unwrap();
    env.compact();
    let mut stream = api
        .watch(
            &WatchParams::default(),
            &old.metadata.resource_version.unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match event {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
            assert!(
                status.message.starts_with("too old resource version"),
                "{}",
                status.message
            );
        }
        other => panic!("expected a 410 error event, got {other:?}"),
    }
}

#[tokio::test]
async fn a_small_history_window_expires_old_versions() {
    let env = opkit_envtest::TestEnv::builder()
        .watch_history(2)
        .build()
        .await
        .unwrap();
    let api = configmaps(&env, "default");
    let first = api
        .create(&PostParams::default(), &configmap("h0"))
        .await
        .unwrap();
    for i in 1..5 {
        api.create(&PostParams::default(), &configmap(&format!("h{i}")))
            .await
            .unwrap();
    }
    let mut stream = api
        .watch(
            &WatchParams::default(),
            &first.metadata.resource_version.unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    assert_eq!(next(&mut stream).await.0, "ERROR");
}

#[tokio::test]
async fn bookmarks_are_sent_when_allowed() {
    let env = opkit_envtest::TestEnv::builder()
        .bookmark_interval(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let api = configmaps(&env, "default");
    let created = api
        .create(&PostParams::default(), &configmap("bm"))
        .await
        .unwrap();
    let mut stream = api
        .watch(
            &WatchParams::default(),
            &created.metadata.resource_version.clone().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    let (kind, rv) = next(&mut stream).await;
    assert_eq!(kind, "BOOKMARK");
    assert_eq!(Some(rv), created.metadata.resource_version);
}

#[tokio::test]
async fn streaming_lists_end_with_the_initial_events_bookmark() {
    let env = env().await;
    let api = configmaps(&env, "default");
    api.create(&PostParams::default(), &configmap("s1"))
        .await
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::streaming_lists(), "")
        .await
        .unwrap()
        .boxed();
    assert_eq!(next(&mut stream).await, ("ADDED", "s1".into()));
    let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match event {
        WatchEvent::Bookmark(b) => assert_eq!(
            b.metadata
                .annotations
                .get("k8s.io/initial-events-end")
                .map(String::as_str),
            Some("true")
        ),
        other => panic!("expected the initial-events-end bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn label_selectors_turn_leaving_objects_into_deletions() {
    let env = env().await;
    let api = configmaps(&env, "default");
    api.create(&PostParams::default(), &configmap("sel"))
        .await
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().labels("app=demo"), "0")
        .await
        .unwrap()
        .boxed();
    assert_eq!(next(&mut stream).await, ("ADDED", "sel".into()));
    api.patch(
        "sel",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .unwrap();
    assert_eq!(next(&mut stream).await, ("DELETED", "sel".into()));
    api.patch(
        "sel",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "demo"}}})),
    )
    .await
    .unwrap();
    assert_eq!(next(&mut stream).await, ("ADDED", "sel".into()));
}

#[tokio::test]
async fn watches_end_after_timeout_seconds() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let mut stream = api
        .watch(&WatchParams::default().timeout(1).disable_bookmarks(), "0")
        .await
        .unwrap()
        .boxed();
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the stream ends within 5 s");
    assert!(end.is_none());
}

#[tokio::test]
async fn the_runtime_watcher_and_reflector_follow_changes_and_relist_after_gone() {
    let env = env().await;
    let api = configmaps(&env, "default");
    api.create(&PostParams::default(), &configmap("r1"))
        .await
        .unwrap();
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .applied_objects()
        .boxed();
    let task = tokio::spawn(async move {
        let _ = stream.try_for_each(|_| async { Ok(()) }).await;
    });
    eventually("the reflector to see r1", || {
        let reader = reader.clone();
        async move { reader.state().len() == 1 }
    })
    .await;
    api.create(&PostParams::default(), &configmap("r2"))
        .await
        .unwrap();
    eventually("the reflector to see r2", || {
        let reader = reader.clone();
        async move { reader.state().len() == 2 }
    })
    .await;
    env.faults().force_gone();
    api.create(&PostParams::default(), &configmap("r3"))
        .await
        .unwrap();
    api.delete("r1", &DeleteParams::default()).await.unwrap();
    eventually("the reflector to relist after 410", || {
        let reader = reader.clone();
        async move {
            let mut names: Vec<String> = reader
                .state()
                .iter()
                .filter_map(|c| c.metadata.name.clone())
                .collect();
            names.sort();
            names == ["r2", "r3"]
        }
    })
    .await;
    task.abort();
}

#[tokio::test]
async fn the_streaming_list_watcher_works() {
    let env = env().await;
    let api = configmaps(&env, "default");
    api.create(&PostParams::default(), &configmap("sl"))
        .await
        .unwrap();
    let mut stream = watcher(api.clone(), watcher::Config::default().streaming_lists())
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("sl"));
    api.create(&PostParams::default(), &configmap("sl2"))
        .await
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.metadata.name.as_deref(), Some("sl2"));
}

#[tokio::test]
async fn watching_another_namespace_sees_nothing_from_this_one() {
    let env = env().await;
    let mut stream = configmaps(&env, "kube-system")
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    configmaps(&env, "default")
        .create(&PostParams::default(), &configmap("elsewhere"))
        .await
        .unwrap();
    configmaps(&env, "kube-system")
        .create(&PostParams::default(), &configmap("here"))
        .await
        .unwrap();
    assert_eq!(next(&mut stream).await, ("ADDED", "here".into()));
}

#[tokio::test]
async fn metadata_lists_and_watchers_work() {
    let env = env().await;
    let api = configmaps(&env, "default");
    api.create(&PostParams::default(), &configmap("meta"))
        .await
        .unwrap();
    let list = api
        .list_metadata(&kube::api::ListParams::default())
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].metadata.name.as_deref(), Some("meta"));
    assert_eq!(
        list.items[0].types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    let metadata: kube::Api<kube::core::PartialObjectMeta<ConfigMap>> =
        kube::Api::namespaced(env.client(), "default");
    let mut stream = watcher(metadata, watcher::Config::default())
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("meta"));
}

#[tokio::test]
async fn field_selectors_narrow_watches_to_one_object() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let mut stream = api
        .watch(
            &WatchParams::default()
                .fields("metadata.name=wanted")
                .disable_bookmarks(),
            "0",
        )
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &configmap("other"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &configmap("wanted"))
        .await
        .unwrap();
    assert_eq!(next(&mut stream).await, ("ADDED", "wanted".into()));
}
