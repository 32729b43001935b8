use opkit::prelude::*;

#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(group = "example.com", version = "v1", kind = "WebApp", namespaced)]
#[operator(rbac(group = "", resources = "secrets", verbs = "*"))]
pub struct WebAppSpec {
    pub replicas: i32,
}

fn main() {}
