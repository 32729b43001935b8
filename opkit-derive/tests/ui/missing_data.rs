// A reconcile that needs the operator's settings cannot be registered without them: the
// mistake is a compile error, not a failing reconcile at run time.
use opkit::prelude::*;

#[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[kube(group = "example.com", version = "v1", kind = "WebApp", namespaced)]
pub struct WebAppSpec {
    pub image: String,
}

pub struct Settings {
    pub registry: String,
}

impl Reconcile<Settings> for WebApp {
    async fn reconcile(&self, ctx: &Context<Self, Settings>) -> opkit::Result<Action> {
        let _image = format!("{}/{}", ctx.data().registry, self.spec.image);
        Ok(Action::done())
    }
}

fn main() {
    let _app = opkit::App::new("webapp-operator").operator::<WebApp>();
}
