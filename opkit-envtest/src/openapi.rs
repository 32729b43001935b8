//! OpenAPI v2 and v3 documents for the served kinds, so `kubectl apply`,
//! `kubectl explain` and server-side field validation work.
//!
//! kubectl 1.35 reads OpenAPI v3 only, for three things:
//! - `kubectl explain` finds a kind's schema by its `x-kubernetes-group-version-kind`
//!   in `components.schemas`;
//! - client-side `kubectl apply` computes strategic merge patches for a kind
//!   whose PATCH operation accepts `application/strategic-merge-patch+json`,
//!   with the `x-kubernetes-patch-merge-key`/`-strategy` of its fields, and a
//!   JSON merge patch otherwise (custom resources);
//! - every write checks that the kind's PATCH operation takes the `fieldValidation`
//!   (and, for `--dry-run=server`, `dryRun`) query parameter; without it kubectl
//!   would validate on the client with OpenAPI v2, which it only reads as protobuf.
//!
//! `/openapi/v2` is served as JSON, and as protobuf to kubectl, which validates
//! on the client with it (`crate::openapi_protobuf`).
//!
//! Built-in schemas come from k8s-openapi and are generated once per process;
//! each document is generated once per set of served resources and then
//! cloned from a process-wide cache.

use crate::resources::ResourceInfo;
use k8s_openapi::schemars::JsonSchema;
use k8s_openapi::schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{LazyLock, Mutex, PoisonError};

const SCHEMAS: &str = "#/components/schemas/";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";

/// The `/openapi/v2` document (Swagger 2.0, JSON) with every served kind.
pub fn v2(resources: &[ResourceInfo]) -> Value {
    cached(resources, "openapi/v2", || build_v2(resources))
}

fn build_v2(resources: &[ResourceInfo]) -> Value {
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for (group, version) in group_versions(resources) {
        let doc = build_v3(resources, &group, &version);
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            paths.insert(path.clone(), v2_path_item(item));
        }
        for (name, schema) in doc["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
        {
            definitions.insert(name.clone(), schema.clone());
        }
    }
    let mut doc = json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.35.0"},
        "paths": paths,
        "definitions": definitions,
    });
    rewrite_refs(&mut doc, SCHEMAS, "#/definitions/");
    doc
}

/// Whether `/openapi/v2` can answer a request with this `Accept` header in
/// JSON; `false` means the client accepts neither JSON nor the protobuf encoding: 406.
pub fn v2_serves(accept: &str) -> bool {
    accept.trim().is_empty()
        || accept.split(',').any(|media| {
            let essence = media.split(';').next().unwrap_or_default().trim();
            matches!(essence, "application/json" | "application/*" | "*/*")
        })
}

/// The `/openapi/v3` index: one entry per group-version path, each with a
/// `serverRelativeURL` whose `hash` changes when the document does.
pub fn v3_index(resources: &[ResourceInfo]) -> Value {
    let mut paths = Map::new();
    for (group, version) in group_versions(resources) {
        let path = gv_path(&group, &version);
        let served: Vec<&ResourceInfo> = resources
            .iter()
            .filter(|r| r.group == group && r.version == version)
            .collect();
        let hash = fingerprint(&format!("{served:?}"));
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash:016X}")}),
        );
    }
    json!({"paths": paths})
}

/// The `/openapi/v3/<path>` document, `path` being `api/v1` or
/// `apis/<group>/<version>`; `None` when nothing is served there.
pub fn v3_group_version(resources: &[ResourceInfo], path: &str) -> Option<Value> {
    let path = path.trim_matches('/');
    let (group, version) = match path.split('/').collect::<Vec<_>>().as_slice() {
        ["api", version] => (String::new(), (*version).to_string()),
        ["apis", group, version] => ((*group).to_string(), (*version).to_string()),
        _ => return None,
    };
    let served: Vec<ResourceInfo> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .cloned()
        .collect();
    if served.is_empty() {
        return None;
    }
    Some(cached(&served, path, || {
        build_v3(&served, &group, &version)
    }))
}

/// Generated documents by what they were generated from: the documents are
/// large and kubectl fetches them on every command.
static DOCUMENTS: LazyLock<Mutex<HashMap<(u64, String), Value>>> = LazyLock::new(Default::default);

/// Documents kept at most; enough for every group-version of a few servers.
const CACHED_DOCUMENTS: usize = 256;

fn cached(resources: &[ResourceInfo], key: &str, build: impl FnOnce() -> Value) -> Value {
    let id = (fingerprint(&format!("{resources:?}")), key.to_string());
    let lock = || DOCUMENTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(doc) = lock().get(&id) {
        return doc.clone();
    }
    let doc = build();
    let mut documents = lock();
    if documents.len() >= CACHED_DOCUMENTS {
        documents.clear();
    }
    documents.insert(id, doc.clone());
    doc
}

/// The fields of a built-in object that its kind does not declare, named as
/// the real server's strict decoding names them (`spec.foo`,
/// `spec.template.spec.containers[0].bar`), for `fieldValidation=Strict`
/// (400: `strict decoding error: unknown field "spec.foo"`) and `Warn`
/// (a `Warning` header per field). `None` when `group`/`kind` is not a
/// built-in kind with a schema.
pub fn unknown_fields(group: &str, kind: &str, object: &Value) -> Option<Vec<String>> {
    let builtins = &*BUILTIN_SCHEMAS;
    let name = builtins.kinds.get(&(group.to_string(), kind.to_string()))?;
    let schema = builtins.definitions.get(name)?;
    let mut unknown = Vec::new();
    collect_unknown(&builtins.definitions, schema, object, "", &mut unknown);
    Some(unknown)
}

/// Follows `$ref` and single-element `allOf` wrappers to the schema they name.
fn resolve<'a>(definitions: &'a BTreeMap<String, Value>, mut schema: &'a Value) -> &'a Value {
    // Bounded: a reference cycle must not hang a request.
    for _ in 0..16 {
        if let Some(name) = schema
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(SCHEMAS))
        {
            match definitions.get(name) {
                Some(target) => schema = target,
                None => return schema,
            }
        } else if let Some(first) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .and_then(|all| all.first())
        {
            schema = first;
        } else {
            return schema;
        }
    }
    schema
}

fn collect_unknown(
    definitions: &BTreeMap<String, Value>,
    schema: &Value,
    value: &Value,
    path: &str,
    unknown: &mut Vec<String>,
) {
    let schema = resolve(definitions, schema);
    let child = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (key, v) in map {
                    match properties.get(key) {
                        Some(field) => collect_unknown(definitions, field, v, &child(key), unknown),
                        None => unknown.push(child(key)),
                    }
                }
            } else if let Some(values) =
                schema.get("additionalProperties").filter(|a| a.is_object())
            {
                for (key, v) in map {
                    collect_unknown(definitions, values, v, &child(key), unknown);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    collect_unknown(definitions, item, v, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

fn group_versions(resources: &[ResourceInfo]) -> BTreeSet<(String, String)> {
    resources
        .iter()
        .map(|r| (r.group.clone(), r.version.clone()))
        .collect()
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// FNV-1a: stable across processes, unlike the standard hasher.
fn fingerprint(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn build_v3(resources: &[ResourceInfo], group: &str, version: &str) -> Value {
    let builtins = &*BUILTIN_SCHEMAS;
    let mut schemas: BTreeMap<String, Value> = BTreeMap::new();
    let mut paths = Map::new();
    for r in resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let name = match &r.schema {
            Some(schema) => {
                let name = custom_definition_name(r);
                schemas.insert(name.clone(), custom_schema(r, schema));
                name
            }
            None => match builtins.kinds.get(&(r.group.clone(), r.kind.clone())) {
                Some(name) => {
                    let mut schema = builtins.definitions.get(name).cloned().unwrap_or_default();
                    schema["x-kubernetes-group-version-kind"] = json!([gvk(r, &r.kind)]);
                    schemas.insert(name.clone(), schema);
                    name.clone()
                }
                // A built-in without a generated schema still gets paths, so
                // kubectl keeps validating on the server.
                None => {
                    let name = custom_definition_name(r);
                    let mut schema =
                        json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
                    schema["x-kubernetes-group-version-kind"] = json!([gvk(r, &r.kind)]);
                    schemas.insert(name.clone(), schema);
                    name
                }
            },
        };
        let list_name = format!("{name}List");
        schemas.insert(list_name.clone(), list_schema(r, &name));
        add_paths(&mut paths, r, &name, &list_name);
    }
    schemas.insert(PATCH.to_string(), json!({
        "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
        "type": "object",
    }));
    // Pull in every definition the kinds refer to, transitively.
    let mut pending: Vec<String> = schemas.values().flat_map(refs).collect();
    pending.extend([STATUS, DELETE_OPTIONS, OBJECT_META, LIST_META].map(String::from));
    while let Some(name) = pending.pop() {
        if schemas.contains_key(&name) {
            continue;
        }
        if let Some(schema) = builtins.definitions.get(&name) {
            pending.extend(refs(schema));
            schemas.insert(name, schema.clone());
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.35.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

/// Definition names a schema refers to.
fn refs(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![schema];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    match (k.as_str(), child) {
                        ("$ref", Value::String(r)) => {
                            if let Some(name) = r.strip_prefix(SCHEMAS) {
                                out.push(name.to_string());
                            }
                        }
                        _ => stack.push(child),
                    }
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}

fn rewrite_refs(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                match child {
                    Value::String(r) if k == "$ref" => {
                        if let Some(name) = r.strip_prefix(from) {
                            *r = format!("{to}{name}");
                        }
                    }
                    _ => rewrite_refs(child, from, to),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, from, to)),
        _ => {}
    }
}

fn gvk(r: &ResourceInfo, kind: &str) -> Value {
    json!({"group": r.group, "kind": kind, "version": r.version})
}

/// The real server's name for a custom resource schema: the group reversed,
/// then version and kind (`com.example.v1.WebApp`).
fn custom_definition_name(r: &ResourceInfo) -> String {
    let mut parts: Vec<&str> = r.group.split('.').filter(|p| !p.is_empty()).collect();
    parts.reverse();
    parts.push(&r.version);
    parts.push(&r.kind);
    parts.join(".")
}

fn custom_schema(r: &ResourceInfo, schema: &Value) -> Value {
    let mut out = schema.clone();
    if !out.is_object() {
        out = json!({"type": "object"});
    }
    if out.get("type").is_none() {
        out["type"] = json!("object");
    }
    if !out["properties"].is_object() {
        out["properties"] = json!({});
    }
    out["properties"]["apiVersion"] = json!({
        "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values.",
        "type": "string",
    });
    out["properties"]["kind"] = json!({
        "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase.",
        "type": "string",
    });
    out["properties"]["metadata"] = json!({
        "allOf": [{"$ref": format!("{SCHEMAS}{OBJECT_META}")}],
        "description": "Standard object's metadata.",
    });
    out["x-kubernetes-group-version-kind"] = json!([gvk(r, &r.kind)]);
    out
}

fn list_schema(r: &ResourceInfo, item: &str) -> Value {
    json!({
        "description": format!("{} is a list of {}", r.list_kind(), r.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
            "items": {
                "type": "array",
                "description": format!("List of {}.", r.plural),
                "items": {"allOf": [{"$ref": format!("{SCHEMAS}{item}")}], "default": {}},
            },
            "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
            "metadata": {"allOf": [{"$ref": format!("{SCHEMAS}{LIST_META}")}], "default": {}, "description": "Standard list metadata."},
        },
        "x-kubernetes-group-version-kind": [gvk(r, &r.list_kind())],
    })
}

fn query(name: &str, description: &str, type_: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": {"type": type_, "uniqueItems": true},
    })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": {"type": "string", "uniqueItems": true},
    })
}

fn dry_run() -> Value {
    query(
        "dryRun",
        "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
        "string",
    )
}

fn field_manager() -> Value {
    query(
        "fieldManager",
        "fieldManager is a name associated with the actor or entity that is making these changes.",
        "string",
    )
}

fn field_validation() -> Value {
    query(
        "fieldValidation",
        "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn (default) and Strict.",
        "string",
    )
}

fn json_content(name: &str) -> Value {
    let schema = json!({"$ref": format!("{SCHEMAS}{name}")});
    json!({
        "application/json": {"schema": schema},
        "application/yaml": {"schema": schema},
    })
}

fn response(name: &str) -> Value {
    json!({"description": "OK", "content": json_content(name)})
}

fn operation_id(
    verb: &str,
    r: &ResourceInfo,
    namespaced: bool,
    list: bool,
    suffix: &str,
) -> String {
    let group = if r.group.is_empty() {
        "Core".to_string()
    } else {
        r.group
            .trim_end_matches(".k8s.io")
            .split(['.', '-'])
            .map(|p| {
                let mut chars = p.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect()
    };
    let mut version = r.version.clone();
    if let Some(first) = version.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let scope = if namespaced { "Namespaced" } else { "" };
    let kind = if list { r.list_kind() } else { r.kind.clone() };
    format!("{verb}{group}{version}{scope}{kind}{suffix}")
}

/// The operations of one resource: collection (list, create, deletecollection),
/// item (read, replace, patch, delete) and, where served, its status.
fn add_paths(paths: &mut Map<String, Value>, r: &ResourceInfo, name: &str, list_name: &str) {
    let prefix = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let collection = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.plural)
    } else {
        format!("{prefix}/{}", r.plural)
    };
    let ns = r.namespaced;
    let own_gvk = gvk(r, &r.kind);
    let op = |action: &str, verb: &str, list: bool, suffix: &str, extra: Value| {
        let mut o = json!({
            "operationId": operation_id(verb, r, ns, list, suffix),
            "tags": [format!("{}_{}", if r.group.is_empty() { "core" } else { &r.group }, r.version)],
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": own_gvk,
        });
        if let (Some(o), Value::Object(extra)) = (o.as_object_mut(), extra) {
            o.extend(extra);
        }
        o
    };
    let mut patch_content = Map::new();
    let patch_schema = json!({"schema": {"$ref": format!("{SCHEMAS}{PATCH}")}});
    let mut patch_types = vec![
        "application/apply-patch+yaml",
        "application/json-patch+json",
        "application/merge-patch+json",
    ];
    // Only built-in kinds take strategic merge patches; kubectl picks its
    // patch type from this list.
    if r.schema.is_none() {
        patch_types.push("application/strategic-merge-patch+json");
    }
    for t in patch_types {
        patch_content.insert(t.to_string(), patch_schema.clone());
    }
    let patch = |suffix: &str| {
        op(
            "patch",
            "patch",
            false,
            suffix,
            json!({
                "description": format!("partially update the specified {}", r.kind),
                "parameters": [dry_run(), field_manager(), field_validation(),
                    query("force", "Force is going to \"force\" Apply requests.", "boolean")],
                "requestBody": {"content": patch_content, "required": true},
                "responses": {"200": response(name), "201": response(name)},
            }),
        )
    };
    let put = |suffix: &str| {
        op(
            "put",
            "replace",
            false,
            suffix,
            json!({
                "description": format!("replace the specified {}", r.kind),
                "parameters": [dry_run(), field_manager(), field_validation()],
                "requestBody": {"content": json_content(name), "required": true},
                "responses": {"200": response(name), "201": response(name)},
            }),
        )
    };
    let read = |suffix: &str| {
        op(
            "get",
            "read",
            false,
            suffix,
            json!({
                "description": format!("read the specified {}", r.kind),
                "responses": {"200": response(name)},
            }),
        )
    };
    let mut scope_params = vec![];
    if ns {
        scope_params.push(path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    let list_params = json!([
        query(
            "labelSelector",
            "A selector to restrict the list of returned objects by their labels.",
            "string"
        ),
        query(
            "fieldSelector",
            "A selector to restrict the list of returned objects by their fields.",
            "string"
        ),
        query(
            "limit",
            "limit is a maximum number of responses to return for a list call.",
            "integer"
        ),
        query(
            "continue",
            "The continue option should be set when retrieving more results from the server.",
            "string"
        ),
        query(
            "resourceVersion",
            "resourceVersion sets a constraint on what resource versions a request may be served from.",
            "string"
        ),
        query(
            "watch",
            "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
            "boolean"
        ),
    ]);
    let mut collection_item = json!({
        "get": op("list", "list", false, "", json!({
            "description": format!("list or watch objects of kind {}", r.kind),
            "parameters": list_params,
            "responses": {"200": response(list_name)},
        })),
        "post": op("post", "create", false, "", json!({
            "description": format!("create a {}", r.kind),
            "parameters": [dry_run(), field_manager(), field_validation()],
            "requestBody": {"content": json_content(name), "required": true},
            "responses": {"200": response(name), "201": response(name), "202": response(name)},
        })),
        "delete": op("deletecollection", "deletecollection", false, "", json!({
            "description": format!("delete collection of {}", r.kind),
            "requestBody": {"content": json_content(DELETE_OPTIONS)},
            "responses": {"200": response(STATUS)},
        })),
        "parameters": scope_params,
    });
    // operationIds of lists name the list kind, as the real server's do.
    collection_item["get"]["operationId"] = json!(operation_id("list", r, ns, false, ""));
    paths.insert(collection.clone(), collection_item);

    let mut item_params = vec![path_param("name", &format!("name of the {}", r.kind))];
    if ns {
        item_params.push(path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    paths.insert(format!("{collection}/{{name}}"), json!({
        "get": read(""),
        "put": put(""),
        "patch": patch(""),
        "delete": op("delete", "delete", false, "", json!({
            "description": format!("delete a {}", r.kind),
            "parameters": [dry_run(), query("propagationPolicy", "Whether and how garbage collection will be performed.", "string")],
            "requestBody": {"content": json_content(DELETE_OPTIONS)},
            "responses": {"200": response(STATUS), "202": response(STATUS)},
        })),
        "parameters": item_params,
    }));
    if r.status_subresource {
        paths.insert(
            format!("{collection}/{{name}}/status"),
            json!({
                "get": read("Status"),
                "put": put("Status"),
                "patch": patch("Status"),
                "parameters": item_params,
            }),
        );
    }
    if ns {
        paths.insert(
            format!("{prefix}/{}", r.plural),
            json!({
                "get": op("list", "list", true, "ForAllNamespaces", json!({
                    "description": format!("list or watch objects of kind {}", r.kind),
                    "parameters": list_params,
                    "responses": {"200": response(list_name)},
                })),
            }),
        );
    }
}

/// A v3 path item in Swagger 2.0 form: body parameters instead of
/// `requestBody`, `consumes` listing the accepted patch types.
fn v2_path_item(item: &Value) -> Value {
    let mut out = item.clone();
    let Some(map) = out.as_object_mut() else {
        return out;
    };
    for (method, op) in map.iter_mut() {
        if method == "parameters" {
            for p in op.as_array_mut().into_iter().flatten() {
                v2_parameter(p);
            }
            continue;
        }
        let Some(op) = op.as_object_mut() else {
            continue;
        };
        let mut params: Vec<Value> = op
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        params.iter_mut().for_each(v2_parameter);
        if let Some(body) = op.remove("requestBody") {
            let content = body["content"].as_object().cloned().unwrap_or_default();
            op.insert("consumes".into(), json!(content.keys().collect::<Vec<_>>()));
            let schema = content
                .values()
                .next()
                .map(|c| c["schema"].clone())
                .unwrap_or_default();
            params.push(json!({"name": "body", "in": "body", "required": true, "schema": schema}));
        }
        op.insert("parameters".into(), json!(params));
        if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
            for r in responses.values_mut() {
                let schema = r["content"]["application/json"]["schema"].clone();
                *r = json!({"description": "OK", "schema": schema});
            }
        }
        op.insert(
            "produces".into(),
            json!(["application/json", "application/yaml"]),
        );
    }
    out
}

fn v2_parameter(p: &mut Value) {
    if let Some(schema) = p.as_object_mut().and_then(|m| m.remove("schema"))
        && let (Some(map), Some(schema)) = (p.as_object_mut(), schema.as_object())
    {
        map.extend(schema.clone());
    }
}

/// The generated schemas of the built-in kinds, with the patch metadata of
/// their list fields, and which definition describes each `(group, kind)`.
struct BuiltinSchemas {
    definitions: BTreeMap<String, Value>,
    kinds: BTreeMap<(String, String), String>,
}

static BUILTIN_SCHEMAS: LazyLock<BuiltinSchemas> = LazyLock::new(generate_builtins);

fn generate_builtins() -> BuiltinSchemas {
    use k8s_openapi::api::{
        admissionregistration::v1 as admission, apps::v1 as apps,
        authentication::v1 as authentication, authorization::v1 as authorization,
        autoscaling::v2 as autoscaling, batch::v1 as batch, certificates::v1 as certificates,
        coordination::v1 as coordination, core::v1 as core, events::v1 as events,
        networking::v1 as networking, policy::v1 as policy, rbac::v1 as rbac,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

    fn add<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
        generator.subschema_for::<T>();
        T::schema_name().into_owned()
    }

    let mut generator = SchemaSettings::openapi3().into_generator();
    let g = &mut generator;
    let kinds: Vec<(&str, &str, String)> = vec![
        ("", "Namespace", add::<core::Namespace>(g)),
        ("", "ConfigMap", add::<core::ConfigMap>(g)),
        ("", "Secret", add::<core::Secret>(g)),
        ("", "Service", add::<core::Service>(g)),
        ("", "ServiceAccount", add::<core::ServiceAccount>(g)),
        ("", "Pod", add::<core::Pod>(g)),
        (
            "",
            "PersistentVolumeClaim",
            add::<core::PersistentVolumeClaim>(g),
        ),
        ("", "PersistentVolume", add::<core::PersistentVolume>(g)),
        ("", "Event", add::<core::Event>(g)),
        ("", "Endpoints", add::<core::Endpoints>(g)),
        ("", "ResourceQuota", add::<core::ResourceQuota>(g)),
        ("", "LimitRange", add::<core::LimitRange>(g)),
        ("", "Node", add::<core::Node>(g)),
        ("apps", "Deployment", add::<apps::Deployment>(g)),
        ("apps", "StatefulSet", add::<apps::StatefulSet>(g)),
        ("apps", "ReplicaSet", add::<apps::ReplicaSet>(g)),
        ("apps", "DaemonSet", add::<apps::DaemonSet>(g)),
        ("batch", "Job", add::<batch::Job>(g)),
        ("batch", "CronJob", add::<batch::CronJob>(g)),
        (
            "networking.k8s.io",
            "Ingress",
            add::<networking::Ingress>(g),
        ),
        (
            "networking.k8s.io",
            "NetworkPolicy",
            add::<networking::NetworkPolicy>(g),
        ),
        (
            "policy",
            "PodDisruptionBudget",
            add::<policy::PodDisruptionBudget>(g),
        ),
        (
            "autoscaling",
            "HorizontalPodAutoscaler",
            add::<autoscaling::HorizontalPodAutoscaler>(g),
        ),
        (
            "coordination.k8s.io",
            "Lease",
            add::<coordination::Lease>(g),
        ),
        ("events.k8s.io", "Event", add::<events::Event>(g)),
        (
            "authentication.k8s.io",
            "TokenReview",
            add::<authentication::TokenReview>(g),
        ),
        (
            "authentication.k8s.io",
            "SelfSubjectReview",
            add::<authentication::SelfSubjectReview>(g),
        ),
        (
            "authorization.k8s.io",
            "SelfSubjectAccessReview",
            add::<authorization::SelfSubjectAccessReview>(g),
        ),
        (
            "authorization.k8s.io",
            "SelfSubjectRulesReview",
            add::<authorization::SelfSubjectRulesReview>(g),
        ),
        (
            "authorization.k8s.io",
            "SubjectAccessReview",
            add::<authorization::SubjectAccessReview>(g),
        ),
        (
            "authorization.k8s.io",
            "LocalSubjectAccessReview",
            add::<authorization::LocalSubjectAccessReview>(g),
        ),
        ("", "ComponentStatus", add::<core::ComponentStatus>(g)),
        (
            "certificates.k8s.io",
            "CertificateSigningRequest",
            add::<certificates::CertificateSigningRequest>(g),
        ),
        (
            "apiregistration.k8s.io",
            "APIService",
            add::<k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService>(g),
        ),
        ("rbac.authorization.k8s.io", "Role", add::<rbac::Role>(g)),
        (
            "rbac.authorization.k8s.io",
            "RoleBinding",
            add::<rbac::RoleBinding>(g),
        ),
        (
            "rbac.authorization.k8s.io",
            "ClusterRole",
            add::<rbac::ClusterRole>(g),
        ),
        (
            "rbac.authorization.k8s.io",
            "ClusterRoleBinding",
            add::<rbac::ClusterRoleBinding>(g),
        ),
        (
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            add::<admission::ValidatingWebhookConfiguration>(g),
        ),
        (
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration",
            add::<admission::MutatingWebhookConfiguration>(g),
        ),
        (
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicy",
            add::<admission::ValidatingAdmissionPolicy>(g),
        ),
        (
            "admissionregistration.k8s.io",
            "ValidatingAdmissionPolicyBinding",
            add::<admission::ValidatingAdmissionPolicyBinding>(g),
        ),
        (
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            add::<apiextensions::CustomResourceDefinition>(g),
        ),
    ];
    add::<meta::Status>(g);
    add::<meta::DeleteOptions>(g);
    add::<meta::ListMeta>(g);
    let mut definitions: BTreeMap<String, Value> =
        generator.take_definitions(true).into_iter().collect();
    for (definition, field, meta) in PATCH_METADATA {
        if let Some(property) = definitions
            .get_mut(*definition)
            .and_then(|d| d.pointer_mut(&format!("/properties/{field}")))
            .and_then(Value::as_object_mut)
        {
            meta.annotate(property);
        }
    }
    BuiltinSchemas {
        definitions,
        kinds: kinds
            .into_iter()
            .map(|(group, kind, name)| ((group.to_string(), kind.to_string()), name))
            .collect(),
    }
}

/// How a field merges: the `patchStrategy`/`patchMergeKey` struct tags and
/// `+listType`/`+listMapKey` markers of the Kubernetes Go types.
struct PatchMeta {
    strategy: Option<&'static str>,
    merge_key: Option<&'static str>,
    list_type: Option<&'static str>,
    map_keys: &'static [&'static str],
}

impl PatchMeta {
    fn annotate(&self, property: &mut Map<String, Value>) {
        if let Some(s) = self.strategy {
            property.insert("x-kubernetes-patch-strategy".into(), json!(s));
        }
        if let Some(k) = self.merge_key {
            property.insert("x-kubernetes-patch-merge-key".into(), json!(k));
        }
        if let Some(t) = self.list_type {
            property.insert("x-kubernetes-list-type".into(), json!(t));
        }
        if !self.map_keys.is_empty() {
            property.insert("x-kubernetes-list-map-keys".into(), json!(self.map_keys));
        }
    }
}

/// A list merged by key: `patchStrategy:"merge" patchMergeKey:"<key>"`, `listType=map`.
const fn map_list(key: &'static str, map_keys: &'static [&'static str]) -> PatchMeta {
    PatchMeta {
        strategy: Some("merge"),
        merge_key: Some(key),
        list_type: Some("map"),
        map_keys,
    }
}

/// Like [`map_list`], and fields a patch omits are cleared (`retainKeys`).
const fn retained_map_list(key: &'static str, map_keys: &'static [&'static str]) -> PatchMeta {
    PatchMeta {
        strategy: Some("merge,retainKeys"),
        merge_key: Some(key),
        list_type: Some("map"),
        map_keys,
    }
}

/// A list merged by key without a declared list type (conditions and the like).
const fn keyed(key: &'static str) -> PatchMeta {
    PatchMeta {
        strategy: Some("merge"),
        merge_key: Some(key),
        list_type: None,
        map_keys: &[],
    }
}

const NAME: &[&str] = &["name"];

/// Patch metadata of the built-in kinds' fields, by definition and field.
const PATCH_METADATA: &[(&str, &str, PatchMeta)] = &[
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        PatchMeta {
            strategy: Some("merge"),
            merge_key: None,
            list_type: Some("set"),
            map_keys: &[],
        },
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        map_list("uid", &["uid"]),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        map_list("name", NAME),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        map_list("name", NAME),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "ephemeralContainers",
        map_list("name", NAME),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "volumes",
        retained_map_list("name", NAME),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "imagePullSecrets",
        map_list("name", NAME),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "hostAliases",
        map_list("ip", &["ip"]),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "topologySpreadConstraints",
        map_list("topologyKey", &["topologyKey", "whenUnsatisfiable"]),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "resourceClaims",
        retained_map_list("name", NAME),
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        "schedulingGates",
        map_list("name", NAME),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "ports",
        map_list("containerPort", &["containerPort", "protocol"]),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "env",
        map_list("name", NAME),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeMounts",
        map_list("mountPath", &["mountPath"]),
    ),
    (
        "io.k8s.api.core.v1.Container",
        "volumeDevices",
        map_list("devicePath", &["devicePath"]),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "ports",
        map_list("containerPort", &["containerPort", "protocol"]),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "env",
        map_list("name", NAME),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeMounts",
        map_list("mountPath", &["mountPath"]),
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        "volumeDevices",
        map_list("devicePath", &["devicePath"]),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "conditions",
        map_list("type", &["type"]),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "podIPs",
        map_list("ip", &["ip"]),
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        "ports",
        map_list("port", &["port", "protocol"]),
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        "hostIPs",
        map_list("ip", &["ip"]),
    ),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        "imagePullSecrets",
        keyed("name"),
    ),
    (
        "io.k8s.api.core.v1.NodeSpec",
        "podCIDRs",
        PatchMeta {
            strategy: Some("merge"),
            merge_key: None,
            list_type: Some("set"),
            map_keys: &[],
        },
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
        "webhooks",
        map_list("name", NAME),
    ),
    (
        "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
        "webhooks",
        map_list("name", NAME),
    ),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        "secrets",
        keyed("name"),
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        "conditions",
        keyed("type"),
    ),
    ("io.k8s.api.core.v1.NodeStatus", "conditions", keyed("type")),
    ("io.k8s.api.core.v1.NodeStatus", "addresses", keyed("type")),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        "conditions",
        map_list("type", &["type"]),
    ),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        "conditions",
        map_list("type", &["type"]),
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        "strategy",
        PatchMeta {
            strategy: Some("retainKeys"),
            merge_key: None,
            list_type: None,
            map_keys: &[],
        },
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        "conditions",
        map_list("type", &["type"]),
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetStatus",
        "conditions",
        map_list("type", &["type"]),
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        "conditions",
        map_list("type", &["type"]),
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        "conditions",
        map_list("type", &["type"]),
    ),
    (
        "io.k8s.api.batch.v1.JobStatus",
        "conditions",
        PatchMeta {
            strategy: Some("merge"),
            merge_key: Some("type"),
            list_type: Some("atomic"),
            map_keys: &[],
        },
    ),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        map_list("type", &["type"]),
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        map_list("type", &["type"]),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtins;

    #[test]
    fn documents_describe_the_builtins() {
        let all = builtins();
        let doc = v2(&all);
        assert_eq!(doc["swagger"], "2.0");
        assert!(doc["definitions"]["io.k8s.api.apps.v1.Deployment"].is_object());
        assert!(v2_serves("application/json"));
        assert!(v2_serves(""));
        let index = v3_index(&all);
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap_or_default();
        assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
        let doc = v3_group_version(&all, "apis/apps/v1").unwrap_or_default();
        let deployment = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "foo": 1});
        assert_eq!(
            unknown_fields("", "ConfigMap", &cm),
            Some(vec!["foo".to_string()])
        );
    }

    fn apps_v1() -> Value {
        v3_group_version(&builtins(), "apis/apps/v1").expect("apps/v1 is served")
    }

    #[test]
    fn every_builtin_kind_has_a_schema_with_its_gvk() {
        let all = builtins();
        for r in &all {
            let doc = v3_group_version(&all, &gv_path(&r.group, &r.version)).expect("served");
            let schemas = doc["components"]["schemas"].as_object().expect("schemas");
            let found = schemas.values().any(|s| {
                s["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|g| {
                        g.iter()
                            .any(|g| g["kind"] == r.kind.as_str() && g["group"] == r.group.as_str())
                    })
                    && s["properties"]["metadata"].is_object()
            });
            assert!(found, "{}/{} has no schema", r.group, r.kind);
            // Every reference resolves inside the document.
            for name in refs(&doc) {
                assert!(
                    schemas.contains_key(&name),
                    "{name} missing from {}",
                    r.kind
                );
            }
        }
    }

    #[test]
    fn patch_metadata_names_real_fields() {
        let definitions = &BUILTIN_SCHEMAS.definitions;
        for (definition, field, _) in PATCH_METADATA {
            let property = definitions
                .get(*definition)
                .and_then(|d| d.pointer(&format!("/properties/{field}")));
            assert!(property.is_some(), "{definition}.{field} does not exist");
        }
    }

    #[test]
    fn unknown_fields_of_built_ins_are_named_by_path() {
        let deployment = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}, "colour": "blue",
                         "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]},
            "spec": {
                "replica": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "a", "image": "nginx", "resources": {"limits": {"cpu": "1"}}},
                    {"name": "b", "image": "nginx", "imagePolicy": "Always",
                     "ports": [{"containerPort": 80, "targetPort": 80}]},
                ]}},
                "strategy": {"rollingUpdate": {"maxSurge": "25%"}},
            },
            "status": {"replicas": 1},
        });
        assert_eq!(
            unknown_fields("apps", "Deployment", &deployment),
            Some(vec![
                "metadata.colour".to_string(),
                "spec.replica".to_string(),
                "spec.template.spec.containers[1].imagePolicy".to_string(),
                "spec.template.spec.containers[1].ports[0].targetPort".to_string(),
            ])
        );
        let clean = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80, "targetPort": "http"}], "selector": {"app": "web"}}});
        assert_eq!(unknown_fields("", "Service", &clean), Some(vec![]));
        assert_eq!(unknown_fields("example.com", "WebApp", &clean), None);
        // A CRD with every schema feature: free-form JSON (defaults, enums,
        // examples) and empty objects are not unknown fields.
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "webapps.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "webapps", "singular": "webapp", "kind": "WebApp", "shortNames": ["wa"], "categories": ["all"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                    "additionalPrinterColumns": [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp", "priority": 0}],
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "required": ["image"], "x-kubernetes-validations": [{"rule": "self.replicas > 0", "message": "m"}],
                            "properties": {
                                "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1, "format": "int32"},
                                "mode": {"type": "string", "enum": ["a", "b"], "pattern": "^[a-z]+$", "maxLength": 3},
                                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "example": {"k": [1, 2]}},
                                "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                                "labels": {"type": "object", "additionalProperties": {"type": "string"}, "nullable": true}}},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}});
        assert_eq!(
            unknown_fields("apiextensions.k8s.io", "CustomResourceDefinition", &crd),
            Some(vec![])
        );
        let mut typo = crd.clone();
        typo["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["propertes"] =
            json!({});
        assert_eq!(
            unknown_fields("apiextensions.k8s.io", "CustomResourceDefinition", &typo),
            Some(vec![
                "spec.versions[0].schema.openAPIV3Schema.properties.spec.propertes".to_string()
            ])
        );
        assert_eq!(
            unknown_fields("", "ConfigMap", &json!("not an object")),
            Some(vec![])
        );
    }

    #[test]
    fn apps_v1_has_merge_keys_for_kubectl_apply() {
        let doc = apps_v1();
        let schemas = &doc["components"]["schemas"];
        let containers = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        let ports = &schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"])
        );
        assert_eq!(
            schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]["x-kubernetes-patch-strategy"],
            "retainKeys"
        );
        // References carry their description beside an allOf, as on a real server.
        let template = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["template"];
        assert_eq!(
            template["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.PodTemplateSpec"
        );
        assert!(template["description"].is_string());
        assert_eq!(
            schemas["io.k8s.api.apps.v1.DeploymentList"]["x-kubernetes-group-version-kind"][0]["kind"],
            "DeploymentList"
        );
    }

    #[test]
    fn patch_operations_advertise_server_side_validation_and_strategic_merge() {
        let doc = apps_v1();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "kind": "Deployment", "version": "v1"})
        );
        let params: Vec<&str> = patch["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter(|p| p["in"] == "query")
            .filter_map(|p| p["name"].as_str())
            .collect();
        for p in ["dryRun", "fieldManager", "fieldValidation", "force"] {
            assert!(params.contains(&p), "{p}");
        }
        assert!(
            patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object()
        );
        // Every PATCH for the kind must agree, since kubectl reads whichever it meets first.
        let status = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status"]
            ["patch"];
        assert_eq!(status["parameters"], patch["parameters"]);
    }

    #[test]
    fn custom_resources_get_their_crd_schema_and_no_strategic_merge() {
        let mut all = builtins();
        let mut webapp = all[0].clone();
        webapp.group = "example.com".into();
        webapp.version = "v1".into();
        webapp.kind = "WebApp".into();
        webapp.plural = "webapps".into();
        webapp.singular = "webapp".into();
        webapp.namespaced = true;
        webapp.schema = Some(json!({
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                "image": {"type": "string"},
            }, "required": ["replicas", "image"]}},
        }));
        all.push(webapp);
        let index = v3_index(&all);
        assert!(index["paths"]["apis/example.com/v1"]["serverRelativeURL"].is_string());
        let doc = v3_group_version(&all, "/apis/example.com/v1").expect("served");
        let schema = &doc["components"]["schemas"]["com.example.v1.WebApp"];
        assert_eq!(
            schema["properties"]["spec"]["properties"]["replicas"]["maximum"],
            10
        );
        assert_eq!(
            schema["properties"]["metadata"]["allOf"][0]["$ref"],
            format!("{SCHEMAS}{OBJECT_META}")
        );
        assert_eq!(
            schema["x-kubernetes-group-version-kind"][0]["kind"],
            "WebApp"
        );
        assert!(doc["components"]["schemas"][OBJECT_META]["properties"]["name"].is_object());
        let patch =
            &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/webapps/{name}"]["patch"];
        assert!(patch["requestBody"]["content"]["application/merge-patch+json"].is_object());
        assert!(
            patch["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_none()
        );
        // The hash changes with the served resources, so clients refetch.
        let before = v3_index(&builtins());
        assert_eq!(
            before["paths"]["apis/apps/v1"],
            index["paths"]["apis/apps/v1"]
        );
        assert!(before["paths"].get("apis/example.com/v1").is_none());
    }

    #[test]
    fn unknown_paths_are_none() {
        let all = builtins();
        for path in ["apis/apps/v2", "apis/apps", "api", "apis/a/b/c", ""] {
            assert!(v3_group_version(&all, path).is_none(), "{path}");
        }
        assert!(v3_group_version(&all, "api/v1").is_some());
    }

    #[test]
    fn v2_uses_definitions_refs_and_body_parameters() {
        let doc = v2(&builtins());
        let text = doc.to_string();
        assert!(!text.contains("#/components/schemas/"));
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert!(
            patch["consumes"]
                .as_array()
                .expect("consumes")
                .contains(&json!("application/strategic-merge-patch+json"))
        );
        assert!(
            patch["parameters"]
                .as_array()
                .expect("parameters")
                .iter()
                .any(|p| p["in"] == "body")
        );
    }
}
