//! The {= kind =} validating webhook, asked by a real API server in the test process
//! (opkit-envtest) exactly as a cluster asks it.
{% set webhook = "validator" %}
{% set handler = kind ~ "Validator" %}

{% include "webhook/test_imports.rs" %}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_{= snake =}_validator_refuses_with_its_reason() -> Result<(), Box<dyn std::error::Error>> {
{% include "webhook/test_setup.rs" %}
    let mut refused = api.get("{= lower =}-sample").await?;
    refused.metadata = kube::api::ObjectMeta {
        name: Some({% if "image" in fields %}"unpinned".into(){% elif "message" in fields %}"silent".into(){% else %}"x".repeat(64){% endif %}),
{% if namespaced %}
        namespace: Some("default".into()),
{% endif %}
        ..Default::default()
    };
{% if "image" in fields %}
    refused.spec.image = "nginx".into();
    let reason = "spec.image: nginx names no tag or digest";
{% elif "message" in fields %}
    refused.spec.message = " ".into();
    let reason = "spec.message: must not be empty";
{% else %}
    let reason = "is longer than 63 characters";
{% endif %}
    match api.create(&Default::default(), &refused).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 403, "{status:?}");
            assert!(status.message.contains(reason), "{}", status.message);
        }
        other => panic!("the validator let it through: {other:?}"),
    }
    Ok(())
}
