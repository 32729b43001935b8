//! The {= kind =} controller against a real API server in the test process (opkit-envtest): the
{% if owns | length == 1 %}
//! sample {= kind =} gets {= owns_phrase =} and becomes Ready, and loses it when deleted.
{% elif owns %}
//! sample {= kind =} gets its dependents and becomes Ready, and they go when it is deleted.
{% else %}
//! sample {= kind =} becomes Ready.
{% endif %}

use std::time::Duration;

use kube::runtime::wait::{Condition, await_condition{% if owns %}, conditions{% endif %}};
{% if owns %}
use opkit::k8s::{{= owned_kinds | join(", ") =}};
{% endif %}
use opkit::prelude::*;
use opkit_envtest::TestEnv;
use {= crate =}::{= module =}::{= kind =};

const SAMPLE: &str = include_str!("../../config/samples/{= sample_file =}");
const NAME: &str = "{= lower =}-sample";
/// How long the controller may take to converge before the test fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// Waits until the object `name` of `api` meets `condition`; returns it (`None` once deleted).
async fn wait<K>(api: &Api<K>, name: &str, condition: impl Condition<K>) -> Result<Option<K>, Box<dyn std::error::Error>>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let found = await_condition(api.clone(), name, condition);
    Ok(tokio::time::timeout(PATIENCE, found).await??)
}

{% if owns %}
/// The uid of the object that controls `object`.
fn controller<K: Resource>(object: &K) -> Option<&str> {
    let owners = object.owner_references();
    owners.iter().find(|o| o.controller == Some(true)).map(|o| o.uid.as_str())
}

{% endif %}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_{= snake =}_becomes_ready() -> Result<(), Box<dyn std::error::Error>> {
    let env = TestEnv::start().await?;
    env.install_crd::<{= kind =}>().await?;
    let operator = opkit::Manager::new(env.client())
        .operator::<{= kind =}>()
        .start();

    opkit::manifests::apply_yaml(&env.client(), "test", SAMPLE).await?;
    let api: Api<{= kind =}> = Api::{% if namespaced %}namespaced(env.client(), "default"){% else %}all(env.client()){% endif %};
    let ready = |o: Option<&{= kind =}>| o.is_some_and(|o| opkit::Readiness::of(o).ready);
    let sample = wait(&api, NAME, ready).await?.ok_or("the sample is gone")?;
{% if owns %}
    let uid = sample.uid().ok_or("the sample has no uid")?;
{% for owned in owns %}

    let {= owned.var =}s: Api<{= owned.kind =}> = Api::namespaced(env.client(), "default");
    let {= owned.var =} = {= owned.var =}s.get(NAME).await?;
    assert_eq!(controller(&{= owned.var =}), Some(uid.as_str()), "the {= owned.kind =}'s controller");
{% endfor %}

    // The garbage collector deletes them with their owner.
    api.delete(NAME, &Default::default()).await?;
{% for owned in owns %}
    let {= owned.var =}_uid = {= owned.var =}.uid().ok_or("no uid")?;
    wait(&{= owned.var =}s, NAME, conditions::is_deleted(&{= owned.var =}_uid)).await?;
{% endfor %}
{% else %}
    assert_eq!(sample.spec.message, "hello");
{% endif %}
    operator.shutdown().await;
    Ok(())
}
