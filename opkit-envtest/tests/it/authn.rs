//! HTTPS and authentication: the per-server CA, client certificates,
//! ServiceAccount tokens (TokenRequest, TokenReview), user tokens, anonymous
//! requests and impersonation.

use crate::support::{env, status};
use k8s_openapi::api::authentication::v1::{
    SelfSubjectReview, TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use opkit_envtest::TestEnv;
use serde_json::json;

async fn service_account(env: &TestEnv, namespace: &str, name: &str) -> ServiceAccount {
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client(), namespace);
    let account = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap()
}

async fn token_request(env: &TestEnv, name: &str, spec: TokenRequestSpec) -> TokenRequest {
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client(), "default");
    let request = TokenRequest {
        spec,
        ..TokenRequest::default()
    };
    accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .unwrap()
}

async fn review(env: &TestEnv, token: &str, audiences: Option<Vec<String>>) -> TokenReview {
    let reviews: Api<TokenReview> = Api::all(env.client());
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            audiences,
        },
        ..TokenReview::default()
    };
    reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
}

/// A client for the server that presents no credentials at all.
fn anonymous(env: &TestEnv) -> kube::Client {
    let mut config = env.config();
    config.auth_info = kube::config::AuthInfo::default();
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn the_server_speaks_https_with_its_own_ca_in_the_kubeconfig() {
    let env = env().await;
    assert!(env.url().starts_with("https://127.0.0.1:"));
    let kubeconfig = env.kubeconfig();
    let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
    let ca = cluster.certificate_authority_data.as_deref().unwrap();
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(ca)
        .unwrap();
    assert_eq!(String::from_utf8(ca).unwrap(), env.ca_pem());
    // A client that trusts only the system roots refuses the server.
    let mut config = env.config();
    config.root_cert = None;
    let untrusting = kube::Client::try_from(config).unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(untrusting);
    let refused = namespaces.list(&ListParams::default()).await.unwrap_err();
    assert!(!matches!(refused, kube::Error::Api(_)), "{refused}");
}

#[tokio::test]
async fn the_default_client_is_the_admin_in_system_masters() {
    let env = env().await;
    let reviews: Api<SelfSubjectReview> = Api::all(env.client());
    let me = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    let user = me.status.unwrap().user_info.unwrap();
    assert_eq!(user.username.as_deref(), Some("admin"));
    assert_eq!(
        user.groups.unwrap(),
        ["system:masters", "system:authenticated"]
    );
}

#[tokio::test]
async fn requests_without_credentials_are_anonymous() {
    let env = env().await;
    let pods: Api<Pod> = Api::namespaced(anonymous(&env), "default");
    let refused = status(pods.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(refused.code, 403);
    assert_eq!(
        refused.message,
        r#"pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" in the namespace "default""#
    );
    // Health and version are public, as on a real server.
    let version = anonymous(&env).apiserver_version().await.unwrap();
    assert_eq!(version.minor, "35");
}

#[tokio::test]
async fn a_bearer_token_that_does_not_authenticate_is_401() {
    let env = env().await;
    let mut config = env.config();
    config.auth_info = serde_json::from_value(json!({"token": "not-a-token"})).unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let refused = status(cms.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        (refused.code, refused.reason.as_str()),
        (401, "Unauthorized")
    );
    assert_eq!(refused.message, "Unauthorized");
}

#[tokio::test]
async fn token_requests_issue_tokens_that_token_reviews_accept() {
    let env = env().await;
    let account = service_account(&env, "default", "robot").await;
    let issued = token_request(
        &env,
        "robot",
        TokenRequestSpec {
            audiences: vec!["api".into()],
            expiration_seconds: Some(1200),
            ..TokenRequestSpec::default()
        },
    )
    .await;
    assert_eq!(issued.metadata.name.as_deref(), Some("robot"));
    assert_eq!(issued.spec.expiration_seconds, Some(1200));
    let status = issued.status.unwrap();
    let expires = status.expiration_timestamp.0.as_second() - jiff::Timestamp::now().as_second();
    assert!((1190..=1200).contains(&expires), "{expires}");
    let reviewed = review(&env, &status.token, Some(vec!["api".into()])).await;
    let result = reviewed.status.unwrap();
    assert_eq!(result.authenticated, Some(true));
    assert_eq!(result.error, None);
    assert_eq!(result.audiences, Some(vec!["api".to_string()]));
    let user = result.user.unwrap();
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:default:robot")
    );
    assert_eq!(user.uid, account.metadata.uid);
    assert_eq!(
        user.groups.unwrap(),
        [
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ]
    );
    // Another audience, or the API's own, does not accept it.
    let other = review(&env, &status.token, Some(vec!["vault".into()])).await;
    let other = other.status.unwrap();
    assert_eq!(other.authenticated, None);
    assert_eq!(
        other.error.as_deref(),
        Some(
            r#"[invalid bearer token, token audiences ["api"] is invalid for the target audiences ["vault"]]"#
        )
    );
    let api = review(&env, &status.token, None).await.status.unwrap();
    assert!(
        api.error
            .unwrap()
            .contains("is invalid for the target audiences")
    );
}

#[tokio::test]
async fn tokens_die_with_their_service_account() {
    let env = env().await;
    service_account(&env, "default", "ephemeral").await;
    let token = token_request(&env, "ephemeral", TokenRequestSpec::default())
        .await
        .status
        .unwrap()
        .token;
    let valid = review(&env, &token, None).await.status.unwrap();
    assert_eq!(valid.authenticated, Some(true));
    assert_eq!(
        valid.audiences,
        Some(vec![
            "https://kubernetes.default.svc.cluster.local".to_string()
        ])
    );
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client(), "default");
    accounts
        .delete("ephemeral", &DeleteParams::default())
        .await
        .unwrap();
    // Recreated under the same name, it is another account: the old token stays dead.
    service_account(&env, "default", "ephemeral").await;
    let dead = review(&env, &token, None).await.status.unwrap();
    assert_eq!(dead.authenticated, None);
    assert_eq!(
        dead.error.as_deref(),
        Some("[invalid bearer token, service account default/ephemeral has been deleted]")
    );
}

#[tokio::test]
async fn token_requests_are_validated() {
    let env = env().await;
    service_account(&env, "default", "robot").await;
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client(), "default");
    let short = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(60),
            ..TokenRequestSpec::default()
        },
        ..TokenRequest::default()
    };
    let refused = status(
        accounts
            .create_token_request("robot", &PostParams::default(), &short)
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code, 422);
    assert_eq!(
        refused.message,
        r#"TokenRequest.authentication.k8s.io "robot" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"#
    );
    let missing = status(
        accounts
            .create_token_request("nobody", &PostParams::default(), &TokenRequest::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(missing.code, 404);
    assert_eq!(missing.message, r#"serviceaccounts "nobody" not found"#);
}

#[tokio::test]
async fn every_namespace_gets_a_default_service_account() {
    let env = env().await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client());
    let ns = serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    for namespace in ["default", "kube-system", "team-a"] {
        let accounts: Api<ServiceAccount> = Api::namespaced(env.client(), namespace);
        assert!(accounts.get("default").await.is_ok(), "{namespace}");
    }
}

#[tokio::test]
async fn service_account_clients_act_as_the_account() {
    let env = env().await;
    service_account(&env, "default", "robot").await;
    let client = env.service_account_client("default", "robot").unwrap();
    let reviews: Api<SelfSubjectReview> = Api::all(client);
    let me = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    let user = me.status.unwrap().user_info.unwrap();
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:default:robot")
    );
    let extra = user.extra.unwrap();
    assert!(extra["authentication.kubernetes.io/credential-id"][0].starts_with("JTI="));
    let Err(missing) = env.service_account_client("default", "ghost") else {
        panic!("a client for a missing ServiceAccount");
    };
    assert!(
        missing
            .to_string()
            .contains(r#"serviceaccounts "ghost" not found"#)
    );
}

#[tokio::test]
async fn user_clients_act_as_the_user_and_groups() {
    let env = env().await;
    let client = env.user_client("jane", &["dev", "ops"]).unwrap();
    let reviews: Api<SelfSubjectReview> = Api::all(client);
    let me = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    let user = me.status.unwrap().user_info.unwrap();
    assert_eq!(user.username.as_deref(), Some("jane"));
    assert_eq!(user.groups.unwrap(), ["dev", "ops", "system:authenticated"]);
}

#[tokio::test]
async fn impersonation_needs_the_impersonate_verb() {
    let env = env().await;
    let mut config = env.config();
    config.auth_info.impersonate = Some("bob".into());
    config.auth_info.impersonate_groups = Some(vec!["readers".into()]);
    let as_bob = kube::Client::try_from(config).unwrap();
    let reviews: Api<SelfSubjectReview> = Api::all(as_bob);
    let me = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .unwrap();
    let user = me.status.unwrap().user_info.unwrap();
    assert_eq!(user.username.as_deref(), Some("bob"));
    assert_eq!(user.groups.unwrap(), ["readers", "system:authenticated"]);

    // Extra keys are percent-encoded so they fit a header name.
    let request = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header("Impersonate-User", "bob")
        .header("Impersonate-Extra-example.com%2fteam", "blue")
        .header("Content-Type", "application/json")
        .body(br#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#.to_vec())
        .unwrap();
    let review: SelfSubjectReview = env.client().request(request).await.unwrap();
    let extra = review.status.unwrap().user_info.unwrap().extra.unwrap();
    assert_eq!(extra["example.com/team"], ["blue"]);

    // jane may not impersonate anyone.
    let jane = env.user_kubeconfig("jane", &[]).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(jane, &Default::default())
        .await
        .unwrap();
    config.auth_info.impersonate = Some("bob".into());
    let cms: Api<ConfigMap> = Api::namespaced(kube::Client::try_from(config).unwrap(), "default");
    let refused = status(cms.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(refused.code, 403);
    assert_eq!(
        refused.message,
        r#"users "bob" is forbidden: User "jane" cannot impersonate resource "users" in API group "" at the cluster scope"#
    );
}

#[tokio::test]
async fn plain_http_is_served_when_asked_for() {
    let env = TestEnv::builder().plain_http().build().await.unwrap();
    assert!(env.url().starts_with("http://127.0.0.1:"));
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
    assert!(cms.list(&ListParams::default()).await.is_ok());
    service_account(&env, "default", "robot").await;
    let robot: Api<ConfigMap> = Api::namespaced(
        env.service_account_client("default", "robot").unwrap(),
        "default",
    );
    assert_eq!(
        status(robot.list(&ListParams::default()).await.unwrap_err()).code,
        403
    );
}
