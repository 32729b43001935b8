//! Discovery documents: `/version`, `/api`, `/apis`, per group-version
//! resource lists, and aggregated discovery (v2) when the client asks for it.
//!
//! kubectl 1.35 and kube 5 first ask `/api` and `/apis` for aggregated
//! discovery; answering it (with its content type) spares them one request
//! per group-version.

use crate::resources::ResourceInfo;
use serde_json::{Value, json};
use std::cmp::Ordering;

/// The content type of an aggregated discovery (v2) answer.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Verbs of the `status` and `scale` subresources.
const SUBRESOURCE_VERBS: [&str; 3] = ["get", "patch", "update"];

/// The `/version` document: a 1.35 server.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "35",
        "emulationMajor": "1",
        "emulationMinor": "35",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "34",
        "gitVersion": "v1.35.0-opkit-envtest",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2025-12-17T00:00:00Z",
        "goVersion": "",
        "compiler": "opkit-envtest",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

/// The architecture as Go names it, which is what clients print.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The `/api` document (`APIVersions`).
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [],
    })
}

/// The `/apis` document (`APIGroupList`): every named group, versions in
/// preference order, the first being the preferred one.
pub fn group_list(resources: &[ResourceInfo]) -> Value {
    let groups: Vec<Value> = groups(resources)
        .into_iter()
        .filter(|(group, _)| !group.is_empty())
        .map(|(group, versions)| {
            let entries: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                .collect();
            let preferred = entries.first().cloned().unwrap_or(Value::Null);
            json!({
                "name": group,
                "versions": entries,
                "preferredVersion": preferred,
            })
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The `APIResourceList` of one group-version (`""` group for `/api/v1`), with
/// subresources; `None` when nothing is served there.
pub fn resource_list(resources: &[ResourceInfo], group: &str, version: &str) -> Option<Value> {
    let served: Vec<&ResourceInfo> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let mut entries = Vec::new();
    for r in served {
        entries.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
            "shortNames": r.short_names,
            "categories": r.categories,
        }));
        for (name, kind) in subresources(r) {
            let mut entry = json!({
                "name": format!("{}/{name}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind.kind,
                "verbs": kind.verbs,
            });
            if !kind.group.is_empty() || !kind.version.is_empty() {
                entry["group"] = json!(kind.group);
                entry["version"] = json!(kind.version);
            }
            entries.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }))
}

/// If the `Accept` header asks for aggregated discovery v2, the content type
/// to answer with ([`AGGREGATED_CONTENT_TYPE`]).
pub fn wants_aggregated(accept: &str) -> Option<&'static str> {
    accept
        .split(',')
        .any(|media| {
            let mut parts = media.split(';').map(str::trim);
            let essence = parts.next().unwrap_or_default();
            let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
            let has = |k: &str, v: &str| params.iter().any(|(pk, pv)| *pk == k && *pv == v);
            essence.eq_ignore_ascii_case("application/json")
                && has("g", "apidiscovery.k8s.io")
                && has("v", "v2")
                && has("as", "APIGroupDiscoveryList")
        })
        .then_some(AGGREGATED_CONTENT_TYPE)
}

/// The aggregated discovery document (`APIGroupDiscoveryList`) for `/api`
/// (`core`) or `/apis`.
pub fn aggregated(resources: &[ResourceInfo], core: bool) -> Value {
    let items: Vec<Value> = groups(resources)
        .into_iter()
        .filter(|(group, _)| group.is_empty() == core)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| {
                    let entries: Vec<Value> = resources
                        .iter()
                        .filter(|r| r.group == group && &r.version == version)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": version, "resources": entries, "freshness": "Current"})
                })
                .collect();
            let metadata = if core {
                json!({"creationTimestamp": null})
            } else {
                json!({"name": group, "creationTimestamp": null})
            };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let subresources: Vec<Value> = subresources(r)
        .into_iter()
        .map(|(name, kind)| {
            json!({
                "subresource": name,
                "responseKind": {"group": kind.group, "version": kind.version, "kind": kind.kind},
                "verbs": kind.verbs,
            })
        })
        .collect();
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": {"group": "", "version": "", "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

/// The kind a subresource answers with; empty group and version mean the
/// resource's own group-version, as discovery writes it.
struct SubresourceKind {
    group: &'static str,
    version: &'static str,
    kind: String,
    verbs: &'static [&'static str],
}

fn subresources(r: &ResourceInfo) -> Vec<(&'static str, SubresourceKind)> {
    let mut out = Vec::new();
    if r.scale.is_some() {
        out.push((
            "scale",
            SubresourceKind {
                group: "autoscaling",
                version: "v1",
                kind: "Scale".to_string(),
                verbs: &SUBRESOURCE_VERBS,
            },
        ));
    }
    if r.status_subresource {
        out.push((
            "status",
            SubresourceKind {
                group: "",
                version: "",
                kind: r.kind.clone(),
                verbs: &SUBRESOURCE_VERBS,
            },
        ));
    }
    for s in r.subresources {
        out.push((
            s.name,
            SubresourceKind {
                group: s.group,
                version: s.version,
                kind: s.kind.to_string(),
                verbs: s.verbs,
            },
        ));
    }
    out.sort_by_key(|(name, _)| *name);
    out
}

/// Groups in order of first appearance, each with its versions sorted by
/// Kubernetes version priority (`v2` > `v1` > `v1beta1` > `v1alpha1`).
fn groups(resources: &[ResourceInfo]) -> Vec<(&str, Vec<&str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in resources {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version.as_str()) {
                    versions.push(&r.version);
                }
            }
            None => out.push((&r.group, vec![&r.version])),
        }
    }
    for (_, versions) in &mut out {
        versions.sort_by(|a, b| compare_versions(b, a));
    }
    out
}

/// Orders version names as Kubernetes does: GA above beta above alpha, higher
/// numbers first within a level, and names that are not Kubernetes versions
/// below all of them, alphabetically.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (parse_version(a), parse_version(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => b.cmp(a),
    }
}

/// `(level, major, minor)`: level 2 for GA, 1 for beta, 0 for alpha.
fn parse_version(v: &str) -> Option<(u8, u64, u64)> {
    let rest = v.strip_prefix('v')?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let major: u64 = rest[..digits].parse().ok()?;
    let tail = &rest[digits..];
    if tail.is_empty() {
        return Some((2, major, 0));
    }
    let (level, minor) = if let Some(m) = tail.strip_prefix("beta") {
        (1, m)
    } else if let Some(m) = tail.strip_prefix("alpha") {
        (0, m)
    } else {
        return None;
    };
    let minor: u64 = minor.parse().ok()?;
    Some((level, major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtins;
    use kube::core::discovery::v2::APIGroupDiscoveryList;

    #[test]
    fn version_and_group_documents() {
        assert_eq!(version()["minor"], "35");
        assert_eq!(core_versions()["versions"][0], "v1");
        let all = builtins();
        assert_eq!(group_list(&all)["kind"], "APIGroupList");
        let apps = resource_list(&all, "apps", "v1").unwrap_or_default();
        assert!(
            apps["resources"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["name"] == "deployments/scale"))
        );
        assert_eq!(
            aggregated(&all, true)["items"][0]["versions"][0]["version"],
            "v1"
        );
        let accept =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert!(wants_aggregated(accept).is_some());
    }

    #[test]
    fn version_priority_matches_kubernetes() {
        let mut versions = vec!["v1alpha1", "v1", "foo", "v2beta1", "v1beta2", "v2", "v10"];
        versions.sort_by(|a, b| compare_versions(b, a));
        assert_eq!(
            versions,
            vec!["v10", "v2", "v1", "v2beta1", "v1beta2", "v1alpha1", "foo"]
        );
    }

    #[test]
    fn every_builtin_is_discoverable_with_its_subresources() {
        let all = builtins();
        for r in &all {
            let list = resource_list(&all, &r.group, &r.version).expect("served group-version");
            let names: Vec<&str> = list["resources"]
                .as_array()
                .expect("resources")
                .iter()
                .filter_map(|e| e["name"].as_str())
                .collect();
            assert!(names.contains(&r.plural.as_str()), "{} missing", r.plural);
            if r.status_subresource {
                assert!(names.contains(&format!("{}/status", r.plural).as_str()));
            }
            if r.scale.is_some() {
                assert!(names.contains(&format!("{}/scale", r.plural).as_str()));
            }
        }
        assert!(resource_list(&all, "apps", "v2").is_none());
    }

    #[test]
    fn scale_subresource_reports_the_autoscaling_kind() {
        let all = builtins();
        let list = resource_list(&all, "apps", "v1").expect("apps/v1");
        let scale = list["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .find(|e| e["name"] == "deployments/scale")
            .expect("deployments/scale");
        assert_eq!(scale["group"], "autoscaling");
        assert_eq!(scale["version"], "v1");
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["verbs"], json!(["get", "patch", "update"]));
    }

    #[test]
    fn group_list_prefers_the_highest_version() {
        let mut all = builtins();
        let mut v1beta1 = all[0].clone();
        v1beta1.group = "example.com".into();
        v1beta1.version = "v1beta1".into();
        let mut v1 = v1beta1.clone();
        v1.version = "v1".into();
        all.push(v1beta1);
        all.push(v1);
        let list = group_list(&all);
        let group = list["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .find(|g| g["name"] == "example.com")
            .expect("example.com");
        assert_eq!(group["preferredVersion"]["version"], "v1");
        assert_eq!(group["versions"][1]["version"], "v1beta1");
        assert!(
            list["groups"]
                .as_array()
                .expect("groups")
                .iter()
                .all(|g| g["name"] != "")
        );
    }

    #[test]
    fn aggregated_documents_parse_as_kube_types() {
        let all = builtins();
        let core: APIGroupDiscoveryList =
            serde_json::from_value(aggregated(&all, true)).expect("core document");
        assert_eq!(core.items.len(), 1);
        let pods = core.items[0].versions[0]
            .resources
            .iter()
            .find(|r| r.resource.as_deref() == Some("pods"))
            .expect("pods");
        assert_eq!(pods.scope.as_deref(), Some("Namespaced"));
        assert_eq!(pods.short_names, vec!["po"]);
        let groups: APIGroupDiscoveryList =
            serde_json::from_value(aggregated(&all, false)).expect("groups document");
        let apps = groups
            .items
            .iter()
            .find(|g| g.metadata.as_ref().and_then(|m| m.name.as_deref()) == Some("apps"))
            .expect("apps");
        let deployments = apps.versions[0]
            .resources
            .iter()
            .find(|r| r.resource.as_deref() == Some("deployments"))
            .expect("deployments");
        let subresources: Vec<&str> = deployments
            .subresources
            .iter()
            .filter_map(|s| s.subresource.as_deref())
            .collect();
        assert_eq!(subresources, vec!["scale", "status"]);
        assert!(
            groups
                .items
                .iter()
                .all(|g| g.metadata.as_ref().and_then(|m| m.name.as_deref()) != Some(""))
        );
    }

    #[test]
    fn aggregated_accept_negotiation() {
        assert_eq!(
            wants_aggregated(kube::core::discovery::v2::ACCEPT_AGGREGATED_DISCOVERY_V2),
            Some(AGGREGATED_CONTENT_TYPE)
        );
        assert_eq!(
            wants_aggregated(
                "application/json; as=APIGroupDiscoveryList; v=v2; g=apidiscovery.k8s.io"
            ),
            Some(AGGREGATED_CONTENT_TYPE)
        );
        assert_eq!(
            wants_aggregated(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            ),
            None
        );
        assert_eq!(wants_aggregated("application/json, */*"), None);
    }
}
