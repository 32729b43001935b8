//! What the control plane serves about itself and for its clients:
//! CertificateSigningRequests and their approval, APIServices, ComponentStatuses.

use crate::support::{WEBAPP_CRD, env, eventually, status};
use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::ComponentStatus;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn signing_request(name: &str, pem: &[u8]) -> CertificateSigningRequest {
    let mut csr: CertificateSigningRequest = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "request": "",
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
            "username": "someone-else",
        },
    }))
    .expect("valid CertificateSigningRequest");
    csr.spec.request = ByteString(pem.to_vec());
    csr
}

fn request_pem() -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "jane");
    params.serialize_request(&key).unwrap().pem().unwrap()
}

#[tokio::test]
async fn a_signing_request_records_its_requester_and_is_approved() {
    let env = env().await;
    let csrs: Api<CertificateSigningRequest> = Api::all(env.client());
    let created = csrs
        .create(
            &PostParams::default(),
            &signing_request("jane", request_pem().as_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(created.spec.username.as_deref(), Some("admin"));
    assert!(
        created
            .spec
            .groups
            .unwrap_or_default()
            .contains(&"system:masters".to_string())
    );

    let approve = Patch::Merge(json!({
        "spec": {"signerName": "example.com/changed"},
        "status": {"conditions": [{"type": "Approved", "status": "True", "reason": "Test"}]},
    }));
    csrs.patch_approval("jane", &PatchParams::default(), &approve)
        .await
        .unwrap();
    let approved = csrs.get_approval("jane").await.unwrap();
    assert_eq!(
        approved.spec.signer_name,
        "kubernetes.io/kube-apiserver-client"
    );
    let condition = &approved.status.unwrap().conditions.unwrap()[0];
    assert_eq!(
        (condition.type_.as_str(), condition.status.as_str()),
        ("Approved", "True")
    );
    assert!(condition.last_update_time.is_some());

    let deny = Patch::Merge(json!({"status": {"conditions": [
        {"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}]}}));
    let refused = status(
        csrs.patch_approval("jane", &PatchParams::default(), &deny)
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code, 422);
    assert!(
        refused.message.contains(
            "status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"
        ),
        "{}",
        refused.message
    );

    let by_signer = csrs
        .list(&ListParams::default().fields("spec.signerName=kubernetes.io/kube-apiserver-client"))
        .await
        .unwrap();
    assert_eq!(by_signer.items.len(), 1);

    let garbage = status(
        csrs.create(&PostParams::default(), &signing_request("bad", b"hello"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (garbage.code, garbage.message.as_str()),
        (
            422,
            "CertificateSigningRequest.certificates.k8s.io \"bad\" is invalid: spec.request: Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST"
        )
    );
}

fn available(service: &APIService) -> bool {
    service
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        })
}

#[tokio::test]
async fn apiservices_follow_the_served_group_versions() {
    let env = env().await;
    let client = env.client();
    let group = kube::discovery::group(&client, "apiregistration.k8s.io")
        .await
        .unwrap();
    let (resource, _) = group.recommended_kind("APIService").unwrap();
    let dynamic: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    assert!(
        !dynamic
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let services: Api<APIService> = Api::all(client.clone());
    for name in ["v1.", "v1.apps", "v1.apiregistration.k8s.io"] {
        let service = services.get(name).await.unwrap();
        assert!(available(&service), "{name}");
    }
    assert_eq!(
        services
            .get("v1.apps")
            .await
            .unwrap()
            .spec
            .and_then(|s| s.group)
            .as_deref(),
        Some("apps")
    );

    env.install_crd_yaml(WEBAPP_CRD).await.unwrap();
    for name in ["v1.example.com", "v1beta1.example.com"] {
        assert!(available(&services.get(name).await.unwrap()), "{name}");
    }
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    crds.delete("webapps.example.com", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the CRD's APIServices go", || async {
        services.get_opt("v1.example.com").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test]
async fn component_statuses_are_healthy_and_read_only() {
    let env = env().await;
    let components: Api<ComponentStatus> = Api::all(env.client());
    let list = components.list(&ListParams::default()).await.unwrap();
    let healthy: Vec<String> = list
        .items
        .iter()
        .filter(|c| {
            c.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Healthy" && c.status == "True")
        })
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert_eq!(healthy, ["controller-manager", "etcd-0", "scheduler"]);
    let refused = status(
        components
            .create(&PostParams::default(), &list.items[0])
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code, 405);
}
