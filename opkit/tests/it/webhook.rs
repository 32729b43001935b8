//! Admission webhooks (issue 6, item 3): opkit's HTTPS server called by the embedded API server
//! through an unmodified kube::Client; malformed and fuzzed bodies over raw TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use opkit::k8s::*;
use opkit::prelude::*;
use opkit::webhook::{
    AdmissionRequest, Certificates, Endpoint, Mutator, Operation, Validator, Verdict, Webhooks,
};
use opkit_envtest::TestEnv;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fixture::{Widget, spec};

use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;

const VALIDATE: &str = "validate.widgets.test.opkit.dev";

/// Denies widgets above a size; warns about large ones it allows.
struct MaxSize(i32);

impl Validator<Widget> for MaxSize {
    async fn validate(&self, request: &AdmissionRequest<Widget>) -> Verdict {
        let Some(widget) = &request.object else {
            return Verdict::allow();
        };
        if widget.spec.size > self.0 {
            Verdict::deny(format!("size {} exceeds {}", widget.spec.size, self.0))
        } else {
            Verdict::allow().warn(format!("size {} is close to the limit", widget.spec.size))
        }
    }
}

/// Records the size in a label and refuses negative sizes.
struct SizeLabel;

impl Mutator<Widget> for SizeLabel {
    async fn mutate(&self, request: &AdmissionRequest<Widget>, widget: &mut Widget) -> Verdict {
        if widget.spec.size < 0 {
            return Verdict::deny("negative size").code(422);
        }
        let user = request.user_info.username.clone().unwrap_or_default();
        let size = widget.spec.size.to_string();
        let labels = widget.labels_mut();
        labels.insert("size".into(), size);
        labels.insert("admitted-for".into(), user.replace(':', "-"));
        Verdict::allow()
    }
}

/// Refuses deleting widgets labelled `protected`: it sees the old object.
struct Protected;

impl Validator<Widget> for Protected {
    const OPERATIONS: &'static [Operation] = &[Operation::Delete];

    async fn validate(&self, request: &AdmissionRequest<Widget>) -> Verdict {
        let protected = request
            .old_object
            .as_ref()
            .is_some_and(|w| w.labels().contains_key("protected"));
        match (protected, request.operation.clone()) {
            (true, Operation::Delete) => Verdict::deny(format!("{} is protected", request.name)),
            _ => Verdict::allow(),
        }
    }
}

/// Takes longer than the API server waits.
struct Slow;

impl Validator<Widget> for Slow {
    async fn validate(&self, _: &AdmissionRequest<Widget>) -> Verdict {
        tokio::time::sleep(Duration::from_secs(3)).await;
        Verdict::allow()
    }
}

async fn env() -> TestEnv {
    let env = TestEnv::start().await.expect("envtest starts");
    env.install_crd::<Widget>().await.expect("the CRD installs");
    env
}

fn widget(name: &str, size: i32) -> Widget {
    let mut w = Widget::new(name, spec(size));
    w.spec.expose = true;
    w
}

fn api_error(result: Result<Widget, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

/// Creates `widget`, which must be refused; the API server's Status.
async fn refused(widgets: &Api<Widget>, widget: Widget) -> kube::core::Status {
    api_error(widgets.create(&PostParams::default(), &widget).await)
}

/// Asserts the Status has `code` and a message containing `text`.
fn says(status: &kube::core::Status, code: u16, text: &str) {
    assert_eq!(status.code, code, "{}", status.message);
    assert!(status.message.contains(text), "{}", status.message);
}

#[tokio::test]
async fn a_validator_denies_with_its_message_as_the_api_server_reports_it() {
    let env = env().await;
    let client = env.client();
    let server = Webhooks::new("widgets")
        .validator::<Widget>(MaxSize(5))
        .start_local(&client)
        .await
        .expect("webhooks start")
        .expect("one webhook");
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let denied = refused(&widgets, widget("big", 7)).await;
    assert_eq!(denied.code, 403);
    assert_eq!(denied.reason, "Forbidden");
    assert_eq!(
        denied.message,
        format!("admission webhook \"{VALIDATE}\" denied the request: size 7 exceeds 5")
    );
    widgets
        .create(&PostParams::default(), &widget("small", 3))
        .await
        .expect("an allowed widget is stored");
    // An update is reviewed too.
    let patch = Patch::Merge(serde_json::json!({"spec": {"size": 9}}));
    let denied = api_error(
        widgets
            .patch("small", &PatchParams::default(), &patch)
            .await,
    );
    assert!(
        denied.message.ends_with("size 9 exceeds 5"),
        "{}",
        denied.message
    );
    assert_eq!(widgets.get("small").await.expect("stored").spec.size, 3);
    server.shutdown().await;
}

#[tokio::test]
async fn a_mutators_patch_is_applied_before_storing_and_validation_sees_it() {
    let env = env().await;
    let client = env.client();
    let _server = Webhooks::new("widgets")
        .mutator::<Widget>(SizeLabel)
        .validator::<Widget>(MaxSize(5))
        .start_local(&client)
        .await
        .expect("webhooks start");
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let created = widgets
        .create(&PostParams::default(), &widget("w", 2))
        .await
        .expect("created");
    assert_eq!(created.labels().get("size").map(String::as_str), Some("2"));
    assert_eq!(
        created.labels().get("admitted-for").map(String::as_str),
        Some("admin")
    );
    let patch = Patch::Merge(serde_json::json!({"spec": {"size": 4}}));
    widgets
        .patch("w", &PatchParams::default(), &patch)
        .await
        .expect("patched");
    let stored = widgets.get("w").await.expect("stored");
    assert_eq!(stored.labels().get("size").map(String::as_str), Some("4"));
    let denied = refused(&widgets, widget("neg", -1)).await;
    says(&denied, 422, "denied the request: negative size");
}

#[tokio::test]
async fn failure_policy_fail_refuses_writes_when_the_webhook_is_down_and_ignore_lets_them_through()
{
    let env = env().await;
    let client = env.client();
    let server = Webhooks::new("widgets")
        .validator::<Widget>(MaxSize(5))
        .start_local(&client)
        .await
        .expect("webhooks start")
        .expect("one webhook");
    server.shutdown().await;
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let refusal = refused(&widgets, widget("a", 1)).await;
    assert_eq!(refusal.code, 500);
    assert!(
        refusal.message.starts_with(&format!(
            "Internal error occurred: failed calling webhook \"{VALIDATE}\""
        )),
        "{}",
        refusal.message
    );
    assert!(widgets.get_opt("a").await.expect("get").is_none());

    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let ignore = Patch::Json::<()>(
        serde_json::from_value(serde_json::json!([
            {"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}
        ]))
        .expect("a JSON patch"),
    );
    configs
        .patch("widgets", &PatchParams::default(), &ignore)
        .await
        .expect("failurePolicy Ignore");
    widgets
        .create(&PostParams::default(), &widget("a", 1))
        .await
        .expect("Ignore lets the write through");
}

#[tokio::test]
async fn a_webhook_slower_than_its_timeout_fails_the_call() {
    let env = env().await;
    let client = env.client();
    let _server = Webhooks::new("widgets")
        .validator::<Widget>(Slow)
        .timeout_seconds(1)
        .start_local(&client)
        .await
        .expect("webhooks start");
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let refusal = refused(&widgets, widget("a", 1)).await;
    says(&refusal, 500, "context deadline exceeded");
}

async fn patch_validating(client: &Client, patch: serde_json::Value) {
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let patch = Patch::Json::<()>(serde_json::from_value(patch).expect("a JSON patch"));
    configs
        .patch("widgets", &PatchParams::default(), &patch)
        .await
        .expect("configuration patched");
}

#[tokio::test]
async fn rules_operations_and_selectors_decide_which_writes_are_reviewed() {
    let env = env().await;
    let client = env.client();
    let _server = Webhooks::new("widgets")
        .validator::<Widget>(MaxSize(0))
        .validator::<Widget>(Protected)
        .start_local(&client)
        .await
        .expect("webhooks start");
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    assert!(
        widgets
            .create(&PostParams::default(), &widget("a", 1))
            .await
            .is_err()
    );

    // Other kinds are not covered by the rules.
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some("free".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    config_maps
        .create(&PostParams::default(), &cm)
        .await
        .expect("a ConfigMap is not reviewed");

    // objectSelector: labelled widgets are skipped.
    patch_validating(
        &client,
        serde_json::json!([{"op": "add", "path": "/webhooks/0/objectSelector",
            "value": {"matchExpressions": [{"key": "skip-admission", "operator": "DoesNotExist"}]}}]),
    )
    .await;
    let mut skipped = widget("skipped", 1);
    skipped
        .labels_mut()
        .insert("skip-admission".into(), "yes".into());
    widgets
        .create(&PostParams::default(), &skipped)
        .await
        .expect("the objectSelector skips it");

    // namespaceSelector: only namespaces labelled admission=on.
    patch_validating(
        &client,
        serde_json::json!([{"op": "add", "path": "/webhooks/0/namespaceSelector",
            "value": {"matchLabels": {"admission": "on"}}}]),
    )
    .await;
    widgets
        .create(&PostParams::default(), &widget("b", 1))
        .await
        .expect("default is not selected");
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let label = Patch::Merge(serde_json::json!({"metadata": {"labels": {"admission": "on"}}}));
    namespaces
        .patch("default", &PatchParams::default(), &label)
        .await
        .expect("namespace labelled");
    assert!(
        widgets
            .create(&PostParams::default(), &widget("c", 1))
            .await
            .is_err()
    );

    // scope: a Cluster-scoped rule does not cover a namespaced kind.
    patch_validating(
        &client,
        serde_json::json!([{"op": "replace", "path": "/webhooks/0/rules/0/scope", "value": "Cluster"}]),
    )
    .await;
    widgets
        .create(&PostParams::default(), &widget("c", 1))
        .await
        .expect("the rule's scope excludes namespaced widgets");

    // The status subresource is not in the rule's resources.
    let status = Patch::Merge(serde_json::json!({"status": {"phase": "Checked"}}));
    widgets
        .patch_status("c", &PatchParams::default(), &status)
        .await
        .expect("status writes are not reviewed");

    // A rule naming the subresource covers it, and then only it.
    patch_validating(
        &client,
        serde_json::json!([
            {"op": "replace", "path": "/webhooks/0/rules/0/scope", "value": "*"},
            {"op": "replace", "path": "/webhooks/0/rules/0/resources", "value": ["widgets/status"]}
        ]),
    )
    .await;
    let status = Patch::Merge(serde_json::json!({"status": {"phase": "Rechecked"}}));
    let denied = api_error(
        widgets
            .patch_status("c", &PatchParams::default(), &status)
            .await,
    );
    assert!(
        denied.message.ends_with("size 1 exceeds 0"),
        "{}",
        denied.message
    );
    widgets
        .create(&PostParams::default(), &widget("d", 1))
        .await
        .expect("the main resource is no longer covered");

    // DELETE is only in the second webhook's rule, which sees the old object.
    let protect = Patch::Merge(serde_json::json!({"metadata": {"labels": {"protected": "yes"}}}));
    widgets
        .patch("b", &PatchParams::default(), &protect)
        .await
        .expect("labelled");
    let denied = match widgets.delete("b", &DeleteParams::default()).await {
        Err(kube::Error::Api(status)) => status.message.clone(),
        other => panic!("expected a denial, got {other:?}"),
    };
    assert_eq!(
        denied,
        "admission webhook \"validate-2.widgets.test.opkit.dev\" denied the request: b is protected"
    );
    widgets
        .delete("c", &DeleteParams::default())
        .await
        .expect("an unprotected widget is deleted");
}

#[tokio::test]
async fn service_client_configs_reach_the_mapped_address_and_verify_the_ca_bundle() {
    let webhooks = Webhooks::new("widgets").validator::<Widget>(MaxSize(5));
    let certs = Certificates::self_signed(&["widgets-webhook.ops.svc"]).expect("certificates");
    let server = webhooks
        .serve(SocketAddr::from(([127, 0, 0, 1], 0)), &certs)
        .await
        .expect("serving");
    let env = TestEnv::builder()
        .webhook_service("ops/widgets-webhook:443", server.addr())
        .build()
        .await
        .expect("envtest starts");
    env.install_crd::<Widget>().await.expect("CRD");
    let client = env.client();
    let endpoint = Endpoint::Service {
        namespace: "ops".into(),
        name: "widgets-webhook".into(),
        port: 443,
    };
    webhooks
        .install(&client, &endpoint, Some(certs.ca_pem()))
        .await
        .expect("installed");
    let widgets: Api<Widget> = Api::namespaced(client.clone(), "default");
    let denied = refused(&widgets, widget("big", 6)).await;
    assert!(
        denied.message.ends_with("size 6 exceeds 5"),
        "{}",
        denied.message
    );

    // Another CA's bundle: the TLS handshake fails and failurePolicy Fail refuses the write.
    let stranger = Certificates::self_signed(&["widgets-webhook.ops.svc"]).expect("certificates");
    webhooks
        .install(&client, &endpoint, Some(stranger.ca_pem()))
        .await
        .expect("reinstalled");
    let refusal = refused(&widgets, widget("small", 1)).await;
    says(&refusal, 500, "failed calling webhook");
}

#[test]
fn the_webhooks_subcommand_prints_both_configurations() {
    let yaml = opkit::App::new("widgets")
        .mutator::<Widget>(SizeLabel)
        .validator::<Widget>(MaxSize(5))
        .webhooks_yaml("ops", true)
        .expect("YAML");
    let docs: Vec<serde_json::Value> = yaml
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml_ng::from_str(d).expect("each document parses"))
        .collect();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["kind"], "MutatingWebhookConfiguration");
    assert_eq!(docs[1]["kind"], "ValidatingWebhookConfiguration");
    let hook = &docs[1]["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["sideEffects"], "None");
    assert_eq!(hook["admissionReviewVersions"], serde_json::json!(["v1"]));
    assert_eq!(hook["timeoutSeconds"], 10);
    assert_eq!(
        hook["clientConfig"]["service"],
        serde_json::json!({"namespace": "ops", "name": "widgets-webhook", "port": 443, "path": "/validate-test-opkit-dev-v1-widget"})
    );
    assert_eq!(
        hook["rules"][0],
        serde_json::json!({"apiGroups": ["test.opkit.dev"], "apiVersions": ["v1"], "resources": ["widgets"], "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"})
    );
    assert_eq!(
        docs[1]["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "ops/widgets-webhook"
    );
}

/// One request over TLS, written by hand so that any bytes can be sent; the HTTP status.
async fn raw(addr: SocketAddr, ca: &str, method: &str, path: &str, body: &[u8]) -> u16 {
    https(addr, ca, "", method, path, body).await.0
}

/// One request over TLS to a server `ca` vouches for as `localhost`, with `headers` (each
/// ending in CRLF); the HTTP status and the whole response.
pub async fn https(
    addr: SocketAddr,
    ca: &str,
    headers: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(cert.expect("a PEM certificate")).expect("a CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("a name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.expect("head written");
    // The server may answer and close before reading an oversized body to the end.
    let _ = tls.write_all(body).await;
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    (status, text)
}

fn review(uid: &str, size: i32) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "test.opkit.dev", "version": "v1", "kind": "Widget"},
            "resource": {"group": "test.opkit.dev", "version": "v1", "resource": "widgets"},
            "name": "w", "namespace": "default", "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "test.opkit.dev/v1", "kind": "Widget",
                "metadata": {"name": "w", "namespace": "default"}, "spec": {"size": size}},
            "oldObject": null,
            "dryRun": false
        }
    }))
    .expect("JSON")
}

async fn raw_server() -> (opkit::webhook::WebhookServer, Certificates) {
    let certs = Certificates::self_signed(&["localhost"]).expect("certificates");
    let server = Webhooks::new("widgets")
        .validator::<Widget>(MaxSize(5))
        .max_body_bytes(64 * 1024)
        .serve(SocketAddr::from(([127, 0, 0, 1], 0)), &certs)
        .await
        .expect("serving");
    (server, certs)
}

const PATH: &str = "/validate-test-opkit-dev-v1-widget";

#[tokio::test]
async fn malformed_and_oversized_bodies_get_400_and_the_server_keeps_answering() {
    let (server, certs) = raw_server().await;
    let (addr, ca) = (server.addr(), certs.ca_pem());
    assert_eq!(raw(addr, ca, "POST", PATH, b"not json").await, 400);
    assert_eq!(raw(addr, ca, "POST", PATH, b"{}").await, 400);
    assert_eq!(
        raw(
            addr,
            ca,
            "POST",
            PATH,
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":null}"#
        )
        .await,
        400
    );
    let mut wrong_type = review("u1", 1);
    wrong_type.splice(0..0, b"[".iter().copied());
    assert_eq!(raw(addr, ca, "POST", PATH, &wrong_type).await, 400);
    let huge = vec![b' '; 256 * 1024];
    assert_eq!(raw(addr, ca, "POST", PATH, &huge).await, 400);
    assert_eq!(raw(addr, ca, "GET", PATH, b"").await, 405);
    assert_eq!(raw(addr, ca, "POST", "/elsewhere", b"").await, 404);
    assert_eq!(raw(addr, ca, "POST", PATH, &review("u2", 1)).await, 200);
}

#[test]
fn fuzzed_bodies_never_crash_the_server() {
    use proptest::prelude::*;
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (server, certs) = runtime.block_on(raw_server());
    let (addr, ca) = (server.addr(), certs.ca_pem().to_owned());
    let valid = String::from_utf8(review("fuzz", 3)).expect("UTF-8");
    let bodies = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        // Valid reviews with bytes replaced: near misses reach deeper into decoding.
        (0..valid.len(), any::<u8>(), 1..8usize).prop_map(move |(at, byte, n)| {
            let mut body = valid.clone().into_bytes();
            for i in at..(at + n).min(body.len()) {
                body[i] = byte;
            }
            body
        }),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(96));
    runner
        .run(&bodies, |body| {
            let status = runtime.block_on(raw(addr, &ca, "POST", PATH, &body));
            prop_assert!(status == 200 || status == 400, "status {status}");
            Ok(())
        })
        .expect("every body is answered with 200 or 400");
    let status = runtime.block_on(raw(addr, &ca, "POST", PATH, &review("after", 1)));
    assert_eq!(status, 200, "the server still answers");
}
