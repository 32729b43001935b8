use opkit::prelude::*;

#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(group = "example.com", version = "v1", kind = "WebApp", namespaced)]
#[operator(concurrency = 2, concurrency = 3)]
pub struct WebAppSpec {
    pub replicas: i32,
}

fn main() {}
