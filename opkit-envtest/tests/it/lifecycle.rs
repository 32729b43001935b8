//! Starting, options, kubeconfigs and shutdown on drop.

use crate::support::{configmap, configmaps, env};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, PostParams, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use std::time::Duration;

#[tokio::test]
async fn dropping_the_environment_ends_watches_and_stops_serving() {
    let env = env().await;
    let api = configmaps(&env, "default");
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), "0")
        .await
        .unwrap()
        .boxed();
    let client = env.client();
    drop(env);
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("the watch ends when the server stops");
    assert!(end.is_none() || matches!(end, Some(Err(_))));
    let after: Api<Namespace> = Api::all(client);
    let refused = tokio::time::timeout(Duration::from_secs(5), after.list(&ListParams::default()))
        .await
        .expect("no hung connection");
    assert!(refused.is_err());
}

#[tokio::test]
async fn a_written_kubeconfig_reaches_the_same_server() {
    let env = env().await;
    configmaps(&env, "default")
        .create(&PostParams::default(), &configmap("shared"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    env.write_kubeconfig(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(&path).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(config.default_namespace, "default");
    let client = kube::Client::try_from(config).unwrap();
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::default_namespaced(client);
    assert!(api.get("shared").await.is_ok());
    assert_eq!(env.url(), format!("https://{}", env.addr()));
}

#[tokio::test]
async fn a_fixed_port_is_honoured() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let env = opkit_envtest::TestEnv::builder()
        .port(port)
        .build()
        .await
        .unwrap();
    assert_eq!(env.addr().port(), port);
    let taken = opkit_envtest::TestEnv::builder().port(port).build().await;
    assert!(matches!(taken, Err(opkit_envtest::Error::Bind { .. })));
}
