{% if owns %}
//! How a {= kind =} is made real: {= owns_phrase =}, and its Ready condition from {% if owns | length == 1 %}it{% else %}them{% endif %}.
{% else %}
//! How a {= kind =} is made real, and its Ready condition.
{% endif %}

{% if labels %}
use std::collections::BTreeMap;

{% endif %}
{% if owns %}
use opkit::k8s::*;
{% endif %}
use opkit::prelude::*;

use super::{= kind =};

impl Reconcile for {= kind =} {
    async fn reconcile(&self, ctx: &Context<Self>) -> opkit::Result<Action> {
{% for owned in owns %}
        let {= owned.var =} = ctx.ensure({= kind =}{= owned.kind =}(self)).await?;
{% endfor %}
{% if owns | length == 1 %}
        ctx.status()
            .readiness("Reconciled", {= owns[0].var =}.readiness());
{% elif owns %}
        // Ready once every dependent is; until then, the first that is not says why.
        let dependents = [{% for owned in owns %}{= owned.var =}.readiness(){% if not loop.last %}, {% endif %}{% endfor %}];
        let pending = dependents.into_iter().find(|readiness| !readiness.ready);
        ctx.status()
            .readiness("Reconciled", pending.unwrap_or({= owns[0].var =}.readiness()));
{% else %}
        ctx.status()
            .ready(true, "Reconciled", self.spec.message.clone());
{% endif %}
        Ok(Action::done())
    }
}
{% if labels %}

/// The labels of the {= kind =}'s objects{% if selects %}, and the selector of its pods{% endif %}.
fn labels({= var =}: &{= kind =}) -> BTreeMap<String, String> {
    let labels = [
        ("app.kubernetes.io/name", "{= lower =}".to_string()),
        ("app.kubernetes.io/instance", {= var =}.name_any()),
    ];
    labels.map(|(key, value)| (key.to_string(), value)).into()
}

/// The name{% if not namespaced %}, namespace{% endif %} and labels of each of the {= kind =}'s objects.
fn metadata({= var =}: &{= kind =}) -> ObjectMeta {
    ObjectMeta {
        name: Some({= var =}.name_any()),
{% if not namespaced %}
        namespace: Some({= var =}.spec.namespace.clone()),
{% endif %}
        labels: Some(labels({= var =})),
        ..Default::default()
    }
}
{% endif %}
{% if pods %}

/// The container of the {= kind =}'s pods, under the restricted Pod Security Standard.
fn container({= var =}: &{= kind =}) -> Container {
    Container {
        name: "{= lower =}".into(),
        image: Some({= var =}.spec.image.clone()),
{% if "port" in fields %}
        ports: Some(vec![ContainerPort {
            container_port: {= var =}.spec.port,
            ..Default::default()
        }]),
{% endif %}
        security_context: Some(opkit::security::restricted()),
        ..Default::default()
    }
}
{% endif %}
{% if workloads %}

/// The selector of the {= kind =}'s workloads: their pods' labels.
fn selector({= var =}: &{= kind =}) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels({= var =})),
        ..Default::default()
    }
}

/// The pods of the {= kind =}'s workloads.
fn pod_template({= var =}: &{= kind =}) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels({= var =})),
            ..Default::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container({= var =})],
            ..Default::default()
        }),
    }
}
{% endif %}
{% if jobs %}

/// The Job{% if "CronJob" in owned_kinds %}s{% endif %} of the {= kind =}: one pod, run to completion.
fn job_spec({= var =}: &{= kind =}) -> JobSpec {
    JobSpec {
        backoff_limit: Some(3),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels({= var =})),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![container({= var =})],
                restart_policy: Some("Never".into()),
                ..Default::default()
            }),
        },
        ..Default::default()
    }
}
{% endif %}
{% macro dependent(owned, doc) %}
{% for line in doc %}
/// {= line =}
{% endfor %}
struct {= kind =}{= owned =}<'a>(&'a {= kind =});

impl Ensure for {= kind =}{= owned =}<'_> {
    type Object = {= owned =};

    fn desired(&self) -> {= owned =} {
        let {= var =} = self.0;
{= caller() =}    }
}
{% endmacro %}
{% for owned in owns %}

{% include "api/owns/" ~ owned.kind ~ ".rs" %}
{% endfor %}
