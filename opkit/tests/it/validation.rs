//! Validation without webhooks: CEL rules on an operator's types agree between the client-side
//! check and the API server, and admission policies declared in Rust are enforced.

use kube::api::{Patch, PatchParams, PostParams};
use opkit::k8s::*;
use opkit::policy::{Binding, Policy, Validation};
use opkit::prelude::*;

/// The message of a 422 refusal.
fn server_message(error: kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 422, "{status:?}");
            status.message
        }
        other => panic!("not an API error: {other}"),
    }
}

/// The client-side check needs opkit's `cel` feature.
#[cfg(feature = "cel")]
mod rules {
    use super::*;

    /// Rules in the style of kube's `crd_derive_cel` example: a cross-field rule on the spec, a
    /// message expression with a reason, an immutable field and a rule on a list's items.
    #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, KubeSchema)]
    #[kube(
        group = "cel.opkit.dev",
        version = "v1",
        kind = "Cache",
        namespaced,
        validation = Rule::new("self.spec.minSize <= self.spec.maxSize").message("minSize must not exceed maxSize")
    )]
    #[serde(rename_all = "camelCase")]
    pub struct CacheSpec {
        pub min_size: i32,
        pub max_size: i32,
        #[x_kube(validation = Rule::new("self != 'forbidden'")
            .message(Message::Expression("'tier ' + self + ' is not offered'".into()))
            .reason(Reason::FieldValueForbidden))]
        pub tier: String,
        #[x_kube(validation = Rule::new("self == oldSelf").message("region is immutable"))]
        pub region: String,
        #[x_kube(validation = Rule::new("self.all(p, p > 0 && p < 65536)").message("ports must be 1 to 65535"))]
        #[serde(default)]
        #[schemars(length(max = 16))]
        pub ports: Vec<i32>,
    }

    fn cache(min: i32, max: i32, tier: &str, region: &str, ports: &[i32]) -> Cache {
        Cache::new(
            "c",
            CacheSpec {
                min_size: min,
                max_size: max,
                tier: tier.into(),
                region: region.into(),
                ports: ports.to_vec(),
            },
        )
    }

    #[tokio::test]
    async fn cel_rules_behave_on_the_server_as_the_client_side_check_says() {
        let env = opkit_envtest::TestEnv::start().await.expect("server");
        env.install_crd::<Cache>()
            .await
            .expect("a CRD with CEL rules installs");
        let api = Api::<Cache>::namespaced(env.client(), "default");
        let creates = [
            cache(1, 3, "standard", "eu", &[80]),
            cache(4, 3, "standard", "eu", &[]),
            cache(1, 3, "forbidden", "eu", &[]),
            cache(1, 3, "standard", "eu", &[0, 443]),
            cache(5, 1, "forbidden", "eu", &[70000]),
        ];
        let mut refused = 0;
        for object in &creates {
            let client_side = opkit::cel::validate(object);
            let server = api.create(&PostParams::default(), object).await;
            match (client_side, server) {
                (Ok(()), Ok(_)) => {
                    api.delete("c", &Default::default()).await.expect("delete");
                }
                (Err(invalid), Err(error)) => {
                    refused += 1;
                    let message = server_message(error);
                    for cause in invalid.causes() {
                        assert!(message.contains(&cause.message), "{message} lacks {cause}");
                    }
                }
                (client_side, server) => panic!(
                    "{:?}: client-side {client_side:?}, server {server:?}",
                    object.spec
                ),
            }
        }
        assert_eq!(refused, 4);

        let stored = api
            .create(&PostParams::default(), &cache(1, 3, "standard", "eu", &[]))
            .await
            .expect("create");
        let moved = cache(1, 3, "standard", "us", &[]);
        let invalid =
            opkit::cel::validate_update(&moved, &stored).expect_err("region is immutable");
        assert_eq!(invalid.causes()[0].field, "spec.region");
        let patch = |spec: serde_json::Value| {
            let api = api.clone();
            async move {
                api.patch(
                    "c",
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({ "spec": spec })),
                )
                .await
            }
        };
        let message = server_message(
            patch(serde_json::json!({"region": "us"}))
                .await
                .expect_err("the server refuses it too"),
        );
        assert!(
            message.contains("spec.region: Invalid value: \"string\": region is immutable"),
            "{message}"
        );
        let grown = cache(1, 5, "standard", "eu", &[]);
        assert!(opkit::cel::validate_update(&grown, &stored).is_ok());
        patch(serde_json::json!({"maxSize": 5}))
            .await
            .expect("other fields still change");
    }
}

/// A custom resource the policies below apply to.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(group = "cel.opkit.dev", version = "v1", kind = "Pool", namespaced)]
pub struct PoolSpec {
    pub replicas: i32,
}

fn pool(name: &str, replicas: i32) -> Pool {
    Pool::new(name, PoolSpec { replicas })
}

#[tokio::test]
async fn a_policy_declared_in_rust_is_printed_installed_and_enforced() {
    let env = opkit_envtest::TestEnv::start().await.expect("server");
    env.install_crd::<Pool>().await.expect("CRD");
    let limits = ConfigMap {
        metadata: ObjectMeta {
            name: Some("pool-limits".into()),
            ..Default::default()
        },
        data: Some([("maxReplicas".to_string(), "5".to_string())].into()),
        ..Default::default()
    };
    let policy = Policy::new("pool-replicas")
        .on::<Pool>()
        .params(limits)
        .variable("max", "int(params.data.maxReplicas)")
        .validation(
            Validation::new("object.spec.replicas <= variables.max").message_expression(
                "'at most ' + string(variables.max) + ' replicas, not ' + string(object.spec.replicas)",
            ),
        )
        .binding(Binding::new("pool-replicas").param("pool-limits"));
    let app = opkit::App::new("pool-operator").policy(policy);
    let yaml = app.policies_yaml("default").expect("YAML");
    let applied = opkit::manifests::apply_yaml(&env.client(), "test", &yaml)
        .await
        .expect("the printed policy applies");
    assert_eq!(
        applied,
        [
            "ValidatingAdmissionPolicy pool-replicas",
            "ValidatingAdmissionPolicyBinding pool-replicas",
            "ConfigMap default/pool-limits"
        ]
    );
    let api = Api::<Pool>::namespaced(env.client(), "default");
    api.create(&PostParams::default(), &pool("small", 5))
        .await
        .expect("within the limit");
    let message = server_message(
        api.create(&PostParams::default(), &pool("big", 6))
            .await
            .expect_err("over the limit"),
    );
    assert_eq!(
        message,
        "pools.cel.opkit.dev \"big\" is forbidden: ValidatingAdmissionPolicy 'pool-replicas' with binding 'pool-replicas' denied request: at most 5 replicas, not 6"
    );
    // The parameter is live: raising it admits what was refused.
    Api::<ConfigMap>::namespaced(env.client(), "default")
        .patch(
            "pool-limits",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"maxReplicas": "6"}})),
        )
        .await
        .expect("raise the limit");
    api.create(&PostParams::default(), &pool("big", 6))
        .await
        .expect("within the raised limit");
}
