//! Bad input gets a Status with the right code and reason, and stores nothing.

use crate::support::{configmap, configmaps, env, status};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ListParams, PostParams};
use opkit_envtest::TestEnv;
use serde_json::Value;

async fn send(env: &TestEnv, request: http::Request<Vec<u8>>) -> kube::core::Status {
    status(env.client().request::<Value>(request).await.unwrap_err())
}

fn post(path: &str, content_type: &str, body: impl Into<Vec<u8>>) -> http::Request<Vec<u8>> {
    http::Request::post(path)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

async fn nothing_stored(env: &TestEnv) {
    let list = configmaps(env, "default")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(list.items.is_empty());
}

#[tokio::test]
async fn malformed_json_is_a_bad_request() {
    let env = env().await;
    let err = send(
        &env,
        post(CONFIGMAPS, "application/json", "{\"metadata\": "),
    )
    .await;
    assert_eq!(err.code, 400);
    assert_eq!(err.reason, "BadRequest");
    nothing_stored(&env).await;
}

#[tokio::test]
async fn malformed_yaml_is_a_bad_request() {
    let env = env().await;
    let err = send(
        &env,
        post(CONFIGMAPS, "application/yaml", "metadata: [unclosed"),
    )
    .await;
    assert_eq!(err.code, 400);
    nothing_stored(&env).await;
}

#[tokio::test]
async fn yaml_bodies_are_accepted() {
    let env = env().await;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: b\n";
    let created: ConfigMap = env
        .client()
        .request(post(CONFIGMAPS, "application/yaml", yaml))
        .await
        .unwrap();
    assert_eq!(created.data.unwrap()["a"], "b");
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_a_bad_request() {
    let env = env().await;
    let err = send(&env, post(CONFIGMAPS, "application/json", "[1, 2]")).await;
    assert_eq!(err.code, 400);
    nothing_stored(&env).await;
}

#[tokio::test]
async fn unknown_resources_are_not_found() {
    let env = env().await;
    let request = http::Request::get("/apis/nothing.example.com/v1/widgets")
        .body(Vec::new())
        .unwrap();
    let err = send(&env, request).await;
    assert_eq!(err.code, 404);
    assert_eq!(
        err.message,
        "the server could not find the requested resource"
    );
}

#[tokio::test]
async fn kind_and_api_version_must_match_the_url() {
    let env = env().await;
    let wrong_kind = r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k"}}"#;
    let err = send(&env, post(CONFIGMAPS, "application/json", wrong_kind)).await;
    assert_eq!(err.code, 400);
    let wrong_version =
        r#"{"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "k"}}"#;
    let err = send(&env, post(CONFIGMAPS, "application/json", wrong_version)).await;
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    );
    nothing_stored(&env).await;
}

#[tokio::test]
async fn bodies_over_three_mebibytes_are_too_large() {
    let env = env().await;
    let big = format!(
        r#"{{"metadata": {{"name": "big"}}, "data": {{"x": "{}"}}}}"#,
        "a".repeat(3 * 1024 * 1024 + 10)
    );
    let err = send(&env, post(CONFIGMAPS, "application/json", big)).await;
    assert_eq!(err.code, 413);
    assert_eq!(err.reason, "RequestEntityTooLarge");
    nothing_stored(&env).await;
}

#[tokio::test]
async fn the_name_in_the_body_must_match_the_url() {
    let env = env().await;
    let api = configmaps(&env, "default");
    api.create(&PostParams::default(), &configmap("right"))
        .await
        .unwrap();
    let mut other = api.get("right").await.unwrap();
    other.metadata.name = Some("wrong".into());
    let err = status(
        api.replace("right", &PostParams::default(), &other)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "the name of the object (wrong) does not match the name on the URL (right)"
    );
}

#[tokio::test]
async fn invalid_names_are_refused() {
    let env = env().await;
    let err = status(
        configmaps(&env, "default")
            .create(&PostParams::default(), &configmap("Not_Valid"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert!(
        err.message.starts_with(
            "ConfigMap \"Not_Valid\" is invalid: metadata.name: Invalid value: \"Not_Valid\": a lowercase RFC 1123 subdomain"
        ),
        "{}",
        err.message
    );
    nothing_stored(&env).await;
}

#[tokio::test]
async fn a_missing_name_is_required() {
    let env = env().await;
    let err = send(
        &env,
        post(CONFIGMAPS, "application/json", r#"{"metadata": {}}"#),
    )
    .await;
    assert_eq!(err.code, 422);
    assert!(
        err.message.contains("name or generateName is required"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn unsupported_methods_are_not_allowed() {
    let env = env().await;
    configmaps(&env, "default")
        .create(&PostParams::default(), &configmap("m"))
        .await
        .unwrap();
    let err = send(
        &env,
        post(&format!("{CONFIGMAPS}/m"), "application/json", "{}"),
    )
    .await;
    assert_eq!(err.code, 405);
    assert_eq!(err.reason, "MethodNotAllowed");
}

#[tokio::test]
async fn protobuf_only_clients_are_not_acceptable() {
    let env = env().await;
    let request = http::Request::get(CONFIGMAPS)
        .header("accept", "application/vnd.kubernetes.protobuf")
        .body(Vec::new())
        .unwrap();
    let err = send(&env, request).await;
    assert_eq!(err.code, 406);
}

#[tokio::test]
async fn an_unknown_patch_type_is_unsupported() {
    let env = env().await;
    configmaps(&env, "default")
        .create(&PostParams::default(), &configmap("pt"))
        .await
        .unwrap();
    let request = http::Request::patch(format!("{CONFIGMAPS}/pt"))
        .header("content-type", "text/plain")
        .body(b"data".to_vec())
        .unwrap();
    let err = send(&env, request).await;
    assert_eq!(err.code, 415);
}

#[tokio::test]
async fn unknown_fields_of_built_ins_are_refused_when_strict_and_dropped_otherwise() {
    let env = env().await;
    let body = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "typo"}, "dta": {"a": "b"}}"#;
    let err = send(
        &env,
        post(
            &format!("{CONFIGMAPS}?fieldValidation=Strict"),
            "application/json",
            body,
        ),
    )
    .await;
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"dta\""
    );
    nothing_stored(&env).await;
    let created: Value = env
        .client()
        .request(post(CONFIGMAPS, "application/json", body))
        .await
        .unwrap();
    assert!(created.get("dta").is_none());
    assert_eq!(created["metadata"]["name"], "typo");
}

#[tokio::test]
async fn unknown_fields_are_reported_as_warnings_by_default() {
    let env = env().await;
    let body =
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "warned"}, "dta": {}}"#;
    let response = env
        .client()
        .send(post(CONFIGMAPS, "application/json", body).map(Into::into))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let warning = response
        .headers()
        .get("warning")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(warning, r#"299 - "unknown field \"dta\"""#);
}
