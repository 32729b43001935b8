//! Manifests as YAML: rendering the objects an operator prints (`crd`, `rbac`, `webhooks`), and
//! applying a YAML stream to a cluster (the samples of the embedded demo mode).

use crate::error::{Error, Result};
use serde::Serialize;

/// Renders objects as a multi-document YAML stream.
///
/// ```
/// let yaml = opkit::manifests::to_yaml(&[serde_json::json!({"kind": "A"}), serde_json::json!({"kind": "B"})]).unwrap();
/// assert_eq!(yaml, "kind: A\n---\nkind: B\n");
/// ```
pub fn to_yaml<T: Serialize>(objects: &[T]) -> Result<String> {
    let mut docs = Vec::new();
    for obj in objects {
        docs.push(
            serde_yaml_ng::to_string(obj)
                .map_err(|e| Error::Config(format!("rendering YAML: {e}")))?,
        );
    }
    Ok(docs.join("---\n"))
}

/// Applies every document of a YAML stream with server-side apply under `field_manager`;
/// namespaced objects without a namespace go to `default`. Returns `Kind namespace/name` of each.
///
/// ```no_run
/// # async fn f(client: kube::Client) -> opkit::Result<()> {
/// let applied = opkit::manifests::apply_yaml(&client, "demo", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n").await?;
/// assert_eq!(applied, vec!["ConfigMap default/x".to_string()]);
/// # Ok(()) }
/// ```
pub async fn apply_yaml(
    client: &kube::Client,
    field_manager: &str,
    yaml: &str,
) -> Result<Vec<String>> {
    use kube::api::{Api, DynamicObject, Patch, PatchParams};
    use kube::discovery::{Scope, pinned_kind};
    use serde::Deserialize;

    // Parse everything first: the YAML parser must not be held across an await.
    let mut values = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value = serde_json::Value::deserialize(document)
            .map_err(|e| Error::Config(format!("reading YAML: {e}")))?;
        if !value.is_null() {
            values.push(value);
        }
    }
    let mut applied = Vec::new();
    for value in values {
        let object: DynamicObject = serde_json::from_value(value.clone())
            .map_err(|e| Error::serialization("reading a manifest", e))?;
        let types = object
            .types
            .clone()
            .ok_or(Error::MissingField("apiVersion and kind"))?;
        let gvk = kube::core::GroupVersionKind::try_from(&types)
            .map_err(|e| Error::Config(format!("apiVersion {:?}: {e}", types.api_version)))?;
        let name = object
            .metadata
            .name
            .clone()
            .ok_or(Error::MissingField("metadata.name"))?;
        let (resource, capabilities) = pinned_kind(client, &gvk)
            .await
            .map_err(|e| Error::kube(format!("finding the API of {}", gvk.kind), e))?;
        let (api, display) = match capabilities.scope {
            Scope::Namespaced => {
                let ns = object
                    .metadata
                    .namespace
                    .clone()
                    .unwrap_or_else(|| "default".to_owned());
                let display = format!("{} {ns}/{name}", gvk.kind);
                (
                    Api::<DynamicObject>::namespaced_with(client.clone(), &ns, &resource),
                    display,
                )
            }
            Scope::Cluster => (
                Api::<DynamicObject>::all_with(client.clone(), &resource),
                format!("{} {name}", gvk.kind),
            ),
        };
        api.patch(
            &name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(&value),
        )
        .await
        .map_err(|e| Error::kube(format!("applying {display}"), e))?;
        applied.push(display);
    }
    Ok(applied)
}
