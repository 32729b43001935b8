//! kubectl's typed generators send protobuf bodies; the server decodes them.

use crate::support::env;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::api::Api;

async fn kubectl(kubectl: &opkit_envtest::tools::Kubectl, args: &[&str]) {
    let output = kubectl.run(args, None).await.expect("kubectl runs");
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn kubectl_create_generators_work() {
    let env = env().await;
    let k = opkit_envtest::tools::Kubectl::new(&env).expect("kubectl is available");
    kubectl(&k, &["create", "configmap", "cm", "--from-literal=a=b"]).await;
    kubectl(
        &k,
        &["create", "secret", "generic", "s", "--from-literal=p=q"],
    )
    .await;
    kubectl(
        &k,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx:1.27",
            "--replicas=3",
            "--port=80",
        ],
    )
    .await;
    kubectl(
        &k,
        &["create", "service", "clusterip", "web", "--tcp=80:8080"],
    )
    .await;

    let cm: ConfigMap = Api::namespaced(env.client(), "default")
        .get("cm")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["a"], "b");
    let secret: Secret = Api::namespaced(env.client(), "default")
        .get("s")
        .await
        .unwrap();
    assert_eq!(secret.data.unwrap()["p"].0, b"q".to_vec());
    let deployment: Deployment = Api::namespaced(env.client(), "default")
        .get("web")
        .await
        .unwrap();
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(3));
    let container = &spec.template.spec.unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("nginx:1.27"));
    assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 80);
    let service: Service = Api::namespaced(env.client(), "default")
        .get("web")
        .await
        .unwrap();
    let port = &service.spec.unwrap().ports.unwrap()[0];
    assert_eq!(port.port, 80);
    assert_eq!(
        port.target_port,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080))
    );
}
