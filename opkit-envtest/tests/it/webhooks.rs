//! Admission webhooks called as kube-apiserver calls them: Go's certificate
//! checks, kept-alive connections, its User-Agent and `?timeout=`, the stored
//! defaults, and denials passed on with the webhook's own code and reason.

use crate::support::{configmap, configmaps, env, status};
use crate::webhook_server::{Answer, WebhookServer};
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use kube::api::{Api, PostParams};
use opkit_envtest::TestEnv;
use serde_json::json;
use std::sync::atomic::Ordering;

async fn register(
    env: &TestEnv,
    server: &WebhookServer,
    ca_pem: &str,
) -> ValidatingWebhookConfiguration {
    let mut config = server.configuration(
        "ValidatingWebhookConfiguration",
        "checks",
        "",
        "v1",
        "configmaps",
    );
    use base64::Engine;
    config["webhooks"][0]["clientConfig"]["caBundle"] =
        json!(base64::engine::general_purpose::STANDARD.encode(ca_pem));
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(env.client());
    configs
        .create(
            &PostParams::default(),
            &serde_json::from_value(config).unwrap(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn webhooks_are_called_as_kube_apiserver_calls_them() {
    let env = env().await;
    let server = WebhookServer::start(Answer::Allow).await;
    let stored = register(&env, &server, &server.ca_pem).await;
    let webhook = serde_json::to_value(&stored.webhooks.unwrap()[0]).unwrap();
    assert_eq!(webhook["failurePolicy"], "Fail");
    assert_eq!(webhook["matchPolicy"], "Equivalent");
    assert_eq!(webhook["namespaceSelector"], json!({}));
    assert_eq!(webhook["objectSelector"], json!({}));
    assert_eq!(webhook["timeoutSeconds"], 10);
    assert_eq!(webhook["rules"][0]["scope"], "*");

    let cms = configmaps(&env, "default");
    for n in 0..5 {
        cms.create(&PostParams::default(), &configmap(&format!("cm-{n}")))
            .await
            .unwrap();
    }
    let calls = server.calls();
    assert_eq!(calls.len(), 5);
    for call in &calls {
        assert_eq!(call.path, "/review?timeout=10s");
        assert_eq!(call.user_agent, "kube-apiserver-admission");
        assert_eq!(call.user, "admin");
    }
    // One TLS handshake for all of them: the connection is kept alive.
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_denial_keeps_the_webhooks_code_reason_and_details() {
    let env = env().await;
    let server = WebhookServer::start(Answer::Deny(json!({
        "code": 409,
        "reason": "AlreadyExists",
        "message": "a configmap of that purpose exists",
        "details": {"name": "taken", "kind": "configmaps"},
    })))
    .await;
    register(&env, &server, &server.ca_pem).await;
    let refused = status(
        configmaps(&env, "default")
            .create(&PostParams::default(), &configmap("taken"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (refused.code, refused.reason.as_str()),
        (409, "AlreadyExists")
    );
    assert_eq!(
        refused.message,
        "admission webhook \"checks.example.com\" denied the request: a configmap of that purpose exists"
    );
    assert_eq!(refused.details.unwrap().name, "taken");
}

#[tokio::test]
async fn a_certificate_from_another_authority_fails_the_call() {
    let env = env().await;
    let server = WebhookServer::start(Answer::Allow).await;
    let stranger = WebhookServer::start(Answer::Allow).await;
    register(&env, &server, &stranger.ca_pem).await;
    let refused = status(
        configmaps(&env, "default")
            .create(&PostParams::default(), &configmap("x"))
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code, 500);
    assert_eq!(
        refused.message,
        format!(
            "Internal error occurred: failed calling webhook \"checks.example.com\": failed to call webhook: Post \"https://{}/review?timeout=10s\": tls: failed to verify certificate: x509: certificate signed by unknown authority",
            server.addr
        )
    );
    assert!(server.calls().is_empty());
}

#[tokio::test]
async fn a_mutating_webhooks_patch_reaches_the_stored_object() {
    use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
    let env = env().await;
    let server = WebhookServer::start(Answer::Patch(json!([
        {"op": "add", "path": "/metadata/labels/admitted", "value": "yes"}
    ])))
    .await;
    let config = server.configuration(
        "MutatingWebhookConfiguration",
        "labels",
        "",
        "v1",
        "configmaps",
    );
    let configs: Api<MutatingWebhookConfiguration> = Api::all(env.client());
    let stored = configs
        .create(
            &PostParams::default(),
            &serde_json::from_value(config).unwrap(),
        )
        .await
        .unwrap();
    let webhook = serde_json::to_value(&stored.webhooks.unwrap()[0]).unwrap();
    assert_eq!(webhook["reinvocationPolicy"], "Never");
    let created = configmaps(&env, "default")
        .create(&PostParams::default(), &configmap("labelled"))
        .await
        .unwrap();
    assert_eq!(created.metadata.labels.unwrap()["admitted"], "yes");
}
