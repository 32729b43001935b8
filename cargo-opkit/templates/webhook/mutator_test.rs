//! The {= kind =} mutating webhook, asked by a real API server in the test process
//! (opkit-envtest) exactly as a cluster asks it.
{% set webhook = "mutator" %}
{% set handler = kind ~ "Defaults" %}

{% include "webhook/test_imports.rs" %}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_{= snake =}_mutator_labels_what_it_stores() -> Result<(), Box<dyn std::error::Error>> {
{% include "webhook/test_setup.rs" %}
    let stored = api.get("{= lower =}-sample").await?;
    let managed_by = stored.labels().get("app.kubernetes.io/managed-by");
    assert_eq!(managed_by.map(String::as_str), Some("{= name =}"));
    Ok(())
}
