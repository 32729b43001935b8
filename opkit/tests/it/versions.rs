//! A kind in two versions on the embedded API server, through the real kubectl and
//! kube::Client: the conversion webhook, lossless round trips, refused conversions, bad
//! ConversionReviews, watches across versions, and storage migration.
//!
//! `Shelf` v1 has a `size` word ("small", "large" or a number of slots) and a `legacy` field
//! v2 has no place for; v2, the hub, has `slots` and a `label` v1 has no place for.

use std::net::SocketAddr;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use opkit::versions::{CONVERSION_ANNOTATION, Versions};
use opkit::webhook::{Certificates, Endpoint, WebhookServer, Webhooks};
use opkit_envtest::TestEnv;
use opkit_envtest::tools::Kubectl;
use serde_json::{Value, json};

mod v1 {
    use opkit::prelude::*;

    #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "versions.opkit.dev",
        version = "v1",
        kind = "Shelf",
        plural = "shelves",
        namespaced
    )]
    pub struct ShelfSpec {
        pub size: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub legacy: Option<String>,
    }
}

mod v2 {
    use opkit::prelude::*;

    #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    #[kube(
        group = "versions.opkit.dev",
        version = "v2",
        kind = "Shelf",
        plural = "shelves",
        namespaced
    )]
    pub struct ShelfSpec {
        pub slots: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub label: Option<String>,
    }
}

impl TryFrom<v1::Shelf> for v2::Shelf {
    type Error = String;

    fn try_from(old: v1::Shelf) -> Result<Self, String> {
        let slots = match old.spec.size.as_str() {
            "small" => 4,
            "large" => 16,
            other => other.parse().map_err(|_| {
                format!("size {other:?} is neither small, large nor a number of slots")
            })?,
        };
        let spec = v2::ShelfSpec { slots, label: None };
        Ok(v2::Shelf {
            metadata: old.metadata,
            spec,
        })
    }
}

impl From<v2::Shelf> for v1::Shelf {
    fn from(new: v2::Shelf) -> Self {
        let size = match new.spec.slots {
            4 => "small".to_owned(),
            16 => "large".to_owned(),
            n => n.to_string(),
        };
        v1::Shelf {
            metadata: new.metadata,
            spec: v1::ShelfSpec { size, legacy: None },
        }
    }
}

fn versions() -> Versions<v2::Shelf> {
    Versions::new().spoke::<v1::Shelf>()
}

/// The server, the Shelf CRD with both versions, its conversion webhook, and kubectl.
struct Setup {
    env: TestEnv,
    kubectl: Kubectl,
    _webhook: WebhookServer,
}

async fn setup() -> Setup {
    let env = TestEnv::start().await.expect("the server starts");
    let crd = versions()
        .crd(&Endpoint::Url("https://127.0.0.1:1".into()), None)
        .expect("the versions assemble");
    env.install_crd_yaml(&opkit::manifests::to_yaml(&[crd]).expect("YAML"))
        .await
        .expect("installs");
    let webhook = Webhooks::new("shelves")
        .conversion(versions())
        .start_local(&env.client())
        .await
        .expect("the webhook starts")
        .expect("served");
    let kubectl = Kubectl::new(&env).expect("kubectl");
    Setup {
        env,
        kubectl,
        _webhook: webhook,
    }
}

impl Setup {
    async fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let out = self.kubectl.run(args, stdin).await.expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, stdout, stderr) = self.kubectl(args, stdin).await;
        assert!(ok, "kubectl {args:?} failed: {stderr}");
        stdout
    }

    fn api(&self, version: &str) -> Api<DynamicObject> {
        api(&self.env, version)
    }
}

fn api(env: &TestEnv, version: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("versions.opkit.dev", version, "Shelf");
    Api::namespaced_with(
        env.client(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, "shelves"),
    )
}

fn manifest(version: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: versions.opkit.dev/{version}\nkind: Shelf\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_and_v2_clients_see_the_same_object_and_nothing_is_lost() {
    let s = setup().await;
    s.ok(
        &["apply", "-f", "-"],
        Some(&manifest("v1", "books", "  size: small\n")),
    )
    .await;
    let v2 = s.api("v2").get("books").await.expect("read in v2");
    assert_eq!(v2.data["spec"], json!({"slots": 4}));
    // A v2 client sets what v1 cannot hold; a v1 client reads it with the annotation...
    s.ok(
        &[
            "patch",
            "shelves.v2.versions.opkit.dev/books",
            "--type=merge",
            "-p",
            r#"{"spec":{"label":"fiction"}}"#,
        ],
        None,
    )
    .await;
    let v1 = s.api("v1").get("books").await.expect("read in v1");
    assert_eq!(v1.data["spec"], json!({"size": "small"}));
    let kept = &v1.metadata.annotations.as_ref().expect("annotations")[CONVERSION_ANNOTATION];
    assert_eq!(kept, r#"{"spec":{"label":"fiction"}}"#);
    // ...changes what it can hold and writes the whole object back: the label survives.
    let mut edited = v1.clone();
    edited.data["spec"]["size"] = json!("large");
    let yaml = serde_yaml_ng::to_string(&edited).expect("YAML");
    s.ok(&["replace", "-f", "-"], Some(&yaml)).await;
    let v2 = s.api("v2").get("books").await.expect("read in v2");
    assert_eq!(v2.data["spec"], json!({"slots": 16, "label": "fiction"}));
    assert!(
        v2.metadata
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key(CONVERSION_ANNOTATION)),
        "the hub never stores the annotation"
    );
    let printed = s
        .ok(
            &[
                "get",
                "shelves.v1.versions.opkit.dev",
                "books",
                "-o",
                "jsonpath={.spec.size}",
            ],
            None,
        )
        .await;
    assert_eq!(printed, "large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_lossy_conversion_is_refused_with_its_message_and_nothing_is_stored() {
    let s = setup().await;
    let (ok, _, stderr) = s
        .kubectl(
            &["apply", "-f", "-"],
            Some(&manifest("v1", "huge", "  size: huge\n")),
        )
        .await;
    assert!(!ok);
    assert!(
        stderr.contains(
            "conversion webhook for versions.opkit.dev/v1, Kind=Shelf failed: converting default/huge from versions.opkit.dev/v1 to versions.opkit.dev/v2: size \"huge\" is neither small, large nor a number of slots"
        ),
        "{stderr}"
    );
    let (ok, _, stderr) = s
        .kubectl(
            &["apply", "-f", "-"],
            Some(&manifest("v1", "old", "  size: small\n  legacy: oak\n")),
        )
        .await;
    assert!(!ok);
    assert!(
        stderr.contains(
            "converting default/old from versions.opkit.dev/v1 to versions.opkit.dev/v2 would lose spec.legacy, which versions.opkit.dev/v2 cannot hold"
        ),
        "{stderr}"
    );
    let listed = s.api("v2").list(&Default::default()).await.expect("listed");
    assert!(listed.items.is_empty(), "{:?}", listed.items);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubectl_watch_in_v1_sees_objects_written_in_v2() {
    let s = setup().await;
    s.ok(
        &["create", "-f", "-"],
        Some(&manifest("v2", "first", "  slots: 4\n")),
    )
    .await;
    let mut watch = s
        .kubectl
        .command(&[
            "get",
            "shelves.v1.versions.opkit.dev",
            "--watch",
            "-o",
            r#"jsonpath={.metadata.name} {.apiVersion} {.spec.size} {.metadata.annotations}{"\n"}"#,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kubectl starts");
    let stdout = watch.stdout.take().expect("stdout is piped");
    let (lines, mut received) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut next = async || {
        tokio::time::timeout(std::time::Duration::from_secs(20), received.recv())
            .await
            .expect("kubectl printed a line in time")
            .expect("kubectl is still watching")
    };
    // The listed object first: from then on kubectl is watching.
    assert_eq!(next().await, "first versions.opkit.dev/v1 small ");
    s.ok(
        &["create", "-f", "-"],
        Some(&manifest("v2", "second", "  slots: 16\n  label: manga\n")),
    )
    .await;
    let line = next().await;
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        line.starts_with("second versions.opkit.dev/v1 large "),
        "{line}"
    );
    assert!(
        line.contains(r#"{\"spec\":{\"label\":\"manga\"}}"#),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_moves_every_object_and_resumes_where_it_stopped() {
    let env = TestEnv::start().await.expect("the server starts");
    // Objects written while v1 was the only version are stored in v1 (sizes 100 to 349 are
    // numbers of slots in both versions).
    env.install_crd::<v1::Shelf>().await.expect("v1 installs");
    let old = api(&env, "v1");
    for i in 0..250 {
        let shelf = serde_json::from_value(json!({
            "apiVersion": "versions.opkit.dev/v1", "kind": "Shelf",
            "metadata": {"name": format!("shelf-{i:03}")},
            "spec": {"size": (i + 100).to_string()},
        }))
        .expect("a Shelf");
        old.create(&Default::default(), &shelf)
            .await
            .expect("created");
    }
    let crd = versions()
        .crd(&Endpoint::Url("https://127.0.0.1:1".into()), None)
        .expect("the versions assemble");
    env.install_crd_yaml(&opkit::manifests::to_yaml(&[crd]).expect("YAML"))
        .await
        .expect("updates");
    let _webhook = Webhooks::new("shelves")
        .conversion(versions())
        .start_local(&env.client())
        .await
        .expect("the webhook starts");
    assert_eq!(stored_versions(&env).await, json!(["v1", "v2"]));
    // A run that stopped after shelf-099 left its progress on the CRD.
    let checkpoint =
        json!({"version": "v2", "namespace": "default", "name": "shelf-099", "migrated": 100});
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(env.client());
    let annotate = json!({"metadata": {"annotations": {opkit::versions::PROGRESS_ANNOTATION: checkpoint.to_string()}}});
    crds.patch(
        "shelves.versions.opkit.dev",
        &PatchParams::default(),
        &Patch::Merge(&annotate),
    )
    .await
    .expect("annotated");
    env.reset_stats();
    let mut seen = Vec::new();
    let progress = opkit::versions::migrate(&env.client(), "shelves.versions.opkit.dev", |p| {
        seen.push(p.migrated)
    })
    .await
    .expect("migrated");
    assert!(progress.resumed && progress.done, "{progress:?}");
    assert_eq!(progress.migrated, 250);
    assert_eq!(progress.total, Some(250));
    assert_eq!(
        seen,
        [100, 200, 250, 250],
        "one report per page of 100 (the first one done before), then the end"
    );
    // Only the 150 objects after the checkpoint were rewritten.
    assert_eq!(env.stats().count_code("patch", "shelves", 200), 150);
    assert_eq!(stored_versions(&env).await, json!(["v2"]));
    let crd = crds
        .get("shelves.versions.opkit.dev")
        .await
        .expect("the CRD");
    assert!(
        !crd.metadata
            .annotations
            .unwrap_or_default()
            .contains_key(opkit::versions::PROGRESS_ANNOTATION),
        "the progress annotation is removed when done"
    );
    // Every object reads in both versions; a second run has nothing to do.
    let shelf = api(&env, "v2").get("shelf-042").await.expect("read in v2");
    assert_eq!(shelf.data["spec"], json!({"slots": 142}));
    env.reset_stats();
    let again = opkit::versions::migrate(&env.client(), "shelves.versions.opkit.dev", |_| {})
        .await
        .expect("nothing to do");
    assert!(again.done && again.migrated == 0);
    assert_eq!(env.stats().writes(), 0);
}

async fn stored_versions(env: &TestEnv) -> Value {
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(env.client());
    let crd = crds
        .get("shelves.versions.opkit.dev")
        .await
        .expect("the CRD");
    json!(crd.status.and_then(|s| s.stored_versions))
}

/// POSTs `body` to the conversion webhook over TLS: the HTTP status and the body.
async fn review(server: &WebhookServer, certs: &Certificates, body: &[u8]) -> (u16, Value) {
    let (status, response) = crate::webhook::https(
        server.addr(),
        certs.ca_pem(),
        "",
        "POST",
        &versions().path(),
        body,
    )
    .await;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

#[tokio::test]
async fn conversion_reviews_of_the_wrong_shape_or_version_are_refused() {
    let certs = Certificates::self_signed(&["localhost"]).expect("certificates");
    let server = Webhooks::new("shelves")
        .conversion(versions())
        .serve(SocketAddr::from(([127, 0, 0, 1], 0)), &certs)
        .await
        .expect("serving");
    let (status, body) = review(&server, &certs, b"{\"request\": 3}").await;
    assert_eq!(status, 400);
    assert!(
        body.as_str()
            .is_some_and(|b| b.starts_with("the body is not a ConversionReview")),
        "{body}"
    );
    let admission = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u", "desiredAPIVersion": "x", "objects": []}});
    let (status, body) = review(&server, &certs, admission.to_string().as_bytes()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "the ConversionReview's type is admission.k8s.io/v1 AdmissionReview, not apiextensions.k8s.io/v1 ConversionReview\n"
    );
    let shelf = json!({"apiVersion": "versions.opkit.dev/v1", "kind": "Shelf",
        "metadata": {"name": "a", "namespace": "default"}, "spec": {"size": "small"}});
    let unknown = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "request": {"uid": "u-1", "desiredAPIVersion": "versions.opkit.dev/v3", "objects": [shelf]}});
    let (status, body) = review(&server, &certs, unknown.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["uid"], "u-1");
    assert_eq!(body["response"]["result"]["status"], "Failure");
    assert_eq!(
        body["response"]["result"]["message"],
        "versions.opkit.dev/v3 is not a version of Shelf (versions.opkit.dev/v2, versions.opkit.dev/v1)"
    );
    // Many objects in one review, each converted; one already in the desired version as is.
    let v2 = json!({"apiVersion": "versions.opkit.dev/v2", "kind": "Shelf",
        "metadata": {"name": "b", "namespace": "default"}, "spec": {"slots": 7}});
    let many = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
        "request": {"uid": "u-2", "desiredAPIVersion": "versions.opkit.dev/v2", "objects": [shelf, v2]}});
    let (status, body) = review(&server, &certs, many.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["result"]["status"], "Success");
    let specs: Vec<&Value> = body["response"]["convertedObjects"]
        .as_array()
        .expect("converted objects")
        .iter()
        .map(|o| &o["spec"])
        .collect();
    assert_eq!(specs, [&json!({"slots": 4}), &json!({"slots": 7})]);
    server.shutdown().await;
}
