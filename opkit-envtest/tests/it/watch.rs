//! Watches: events in order, synthetic ADDED, bookmarks, 410 Gone,
//! selectors, timeouts, and kube-runtime's watcher and reflector.

use crate::support::{configmap, configmaps, env, eventually};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use opkit_envtest::{TestEnv, TestEnvBuilder};
use serde_json::json;
use std::time::Duration;

type Events = BoxStream<'static, kube::Result<WatchEvent<ConfigMap>>>;

async fn create(api: &Api<ConfigMap>, name: &str) -> ConfigMap {
    api.create(&PostParams::default(), &configmap(name))
        .await
        .expect("created")
}

async fn relabel(api: &Api<ConfigMap>, name: &str, app: &str) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": app}}})),
    )
    .await
    .expect("relabelled");
}

async fn delete(api: &Api<ConfigMap>, name: &str) {
    api.delete(name, &DeleteParams::default())
        .await
        .expect("deleted");
}

async fn watch(api: &Api<ConfigMap>, params: &WatchParams, version: &str) -> Events {
    api.watch(params, version)
        .await
        .expect("the watch starts")
        .boxed()
}

/// A watch from the version `object` was stored at.
async fn watch_since(api: &Api<ConfigMap>, object: &ConfigMap) -> Events {
    let version = object
        .metadata
        .resource_version
        .as_deref()
        .expect("a resource version");
    watch(api, &WatchParams::default(), version).await
}

async fn built(builder: TestEnvBuilder) -> TestEnv {
    builder.build().await.expect("the test server starts")
}

/// The next item of `stream`, which must come within 5 seconds.
async fn next_item<T, E: std::fmt::Debug>(
    stream: &mut (impl Stream<Item = Result<T, E>> + Unpin),
) -> T {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an item within 5 s")
        .expect("the stream is open")
        .expect("a valid item")
}

fn name_of(event: &WatchEvent<ConfigMap>) -> (&'static str, String) {
    match event {
        WatchEvent::Added(o) => ("ADDED", o.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Modified(o) => ("MODIFIED", o.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Deleted(o) => ("DELETED", o.metadata.name.clone().unwrap_or_default()),
        WatchEvent::Bookmark(b) => ("BOOKMARK", b.metadata.resource_version.clone()),
        WatchEvent::Error(e) => ("ERROR", e.message.clone()),
    }
}

async fn next(stream: &mut Events) -> (&'static str, String) {
    name_of(&next_item(stream).await)
}

/// Waits until the reflector's store holds exactly the ConfigMaps `names`.
async fn until_stored(reader: &Store<ConfigMap>, what: &str, names: &[&str]) {
    eventually(what, || {
        let mut stored: Vec<String> = reader
            .state()
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        stored.sort();
        std::future::ready(stored == names)
    })
    .await;
}

#[tokio::test]
async fn watch_from_a_resource_version_sees_every_change_in_order() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let first = create(&api, "before").await;
    let mut stream = watch_since(&api, &first).await;
    create(&api, "w").await;
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v2"}})),
    )
    .await
    .expect("patched");
    delete(&api, "w").await;
    assert_eq!(next(&mut stream).await, ("ADDED", "w".into()));
    assert_eq!(next(&mut stream).await, ("MODIFIED", "w".into()));
    assert_eq!(next(&mut stream).await, ("DELETED", "w".into()));
}

#[tokio::test]
async fn watch_from_zero_starts_with_synthetic_added_events() {
    let env = env().await;
    let api = configmaps(&env, "default");
    for name in ["a", "b"] {
        create(&api, name).await;
    }
    let mut stream = watch(&api, &WatchParams::default(), "0").await;
    assert_eq!(next(&mut stream).await, ("ADDED", "a".into()));
    assert_eq!(next(&mut stream).await, ("ADDED", "b".into()));
}

#[tokio::test]
async fn a_compacted_resource_version_is_gone() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let old = create(&api, "old").await;
    create(&api, "newer").await;
    env.compact();
    let mut stream = watch_since(&api, &old).await;
    match next_item(&mut stream).await {
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
    let env = built(TestEnv::builder().watch_history(2)).await;
    let api = configmaps(&env, "default");
    let first = create(&api, "h0").await;
    for i in 1..5 {
        create(&api, &format!("h{i}")).await;
    }
    let mut stream = watch_since(&api, &first).await;
    assert_eq!(next(&mut stream).await.0, "ERROR");
}

#[tokio::test]
async fn the_runtime_watcher_relists_when_its_version_expires() {
    let env = built(TestEnv::builder().watch_history(4)).await;
    let api = configmaps(&env, "default");
    create(&api, "before").await;
    // Watches end after a second; the watcher then watches again from the last version it saw.
    let config = watcher::Config::default().timeout(1);
    let mut events = watcher(api.clone(), config).boxed();
    let mut initial = Vec::new();
    loop {
        match next_item(&mut events).await {
            watcher::Event::InitApply(cm) => initial.extend(cm.metadata.name),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial, ["before"]);
    // Writes the watch does not see move the window past the version it last saw.
    let elsewhere = configmaps(&env, "kube-system");
    for i in 0..6 {
        create(&elsewhere, &format!("elsewhere-{i}")).await;
    }
    let expired = loop {
        let item = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("an item within 5 s")
            .expect("the watcher goes on");
        if let Err(error) = item {
            break error;
        }
    };
    assert!(
        expired.to_string().contains("too old resource version"),
        "{expired}"
    );
    let mut relisted = Vec::new();
    loop {
        match next_item(&mut events).await {
            watcher::Event::InitApply(cm) => relisted.extend(cm.metadata.name),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(relisted, ["before"]);
}

#[tokio::test]
async fn bookmarks_are_sent_when_allowed() {
    let env = built(TestEnv::builder().bookmark_interval(Duration::from_millis(100))).await;
    let api = configmaps(&env, "default");
    let created = create(&api, "bm").await;
    let mut stream = watch_since(&api, &created).await;
    let (kind, rv) = next(&mut stream).await;
    assert_eq!(kind, "BOOKMARK");
    assert_eq!(Some(rv), created.metadata.resource_version);
}

#[tokio::test]
async fn streaming_lists_end_with_the_initial_events_bookmark() {
    let env = env().await;
    let api = configmaps(&env, "default");
    create(&api, "s1").await;
    let mut stream = watch(&api, &WatchParams::streaming_lists(), "").await;
    assert_eq!(next(&mut stream).await, ("ADDED", "s1".into()));
    match next_item(&mut stream).await {
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
    create(&api, "sel").await;
    let mut stream = watch(&api, &WatchParams::default().labels("app=demo"), "0").await;
    assert_eq!(next(&mut stream).await, ("ADDED", "sel".into()));
    relabel(&api, "sel", "other").await;
    assert_eq!(next(&mut stream).await, ("DELETED", "sel".into()));
    relabel(&api, "sel", "demo").await;
    assert_eq!(next(&mut stream).await, ("ADDED", "sel".into()));
}

#[tokio::test]
async fn watches_end_after_timeout_seconds() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let mut stream = watch(
        &api,
        &WatchParams::default().timeout(1).disable_bookmarks(),
        "0",
    )
    .await;
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the stream ends within 5 s");
    assert!(end.is_none());
}

#[tokio::test]
async fn the_runtime_watcher_and_reflector_follow_changes_and_relist_after_gone() {
    let env = env().await;
    let api = configmaps(&env, "default");
    create(&api, "r1").await;
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .applied_objects()
        .boxed();
    let task = tokio::spawn(async move {
        let _ = stream.try_for_each(|_| async { Ok(()) }).await;
    });
    until_stored(&reader, "the reflector to see r1", &["r1"]).await;
    create(&api, "r2").await;
    until_stored(&reader, "the reflector to see r2", &["r1", "r2"]).await;
    env.faults().force_gone();
    create(&api, "r3").await;
    delete(&api, "r1").await;
    until_stored(&reader, "the reflector to relist after 410", &["r2", "r3"]).await;
    task.abort();
}

#[tokio::test]
async fn the_streaming_list_watcher_works() {
    let env = env().await;
    let api = configmaps(&env, "default");
    create(&api, "sl").await;
    let mut stream = watcher(api.clone(), watcher::Config::default().streaming_lists())
        .applied_objects()
        .boxed();
    let first = next_item(&mut stream).await;
    assert_eq!(first.metadata.name.as_deref(), Some("sl"));
    create(&api, "sl2").await;
    let second = next_item(&mut stream).await;
    assert_eq!(second.metadata.name.as_deref(), Some("sl2"));
}

#[tokio::test]
async fn watching_another_namespace_sees_nothing_from_this_one() {
    let env = env().await;
    let system = configmaps(&env, "kube-system");
    let mut stream = watch(&system, &WatchParams::default(), "0").await;
    create(&configmaps(&env, "default"), "elsewhere").await;
    create(&system, "here").await;
    assert_eq!(next(&mut stream).await, ("ADDED", "here".into()));
}

#[tokio::test]
async fn metadata_lists_and_watchers_work() {
    let env = env().await;
    let api = configmaps(&env, "default");
    create(&api, "meta").await;
    let list = api
        .list_metadata(&kube::api::ListParams::default())
        .await
        .expect("listed");
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
    let first = next_item(&mut stream).await;
    assert_eq!(first.metadata.name.as_deref(), Some("meta"));
}

#[tokio::test]
async fn field_selectors_narrow_watches_to_one_object() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let mut stream = watch(
        &api,
        &WatchParams::default()
            .fields("metadata.name=wanted")
            .disable_bookmarks(),
        "0",
    )
    .await;
    create(&api, "other").await;
    create(&api, "wanted").await;
    assert_eq!(next(&mut stream).await, ("ADDED", "wanted".into()));
}
