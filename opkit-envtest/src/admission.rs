//! Admission webhooks: the server calls the Mutating and ValidatingWebhookConfigurations it
//! stores, with AdmissionReview v1 over HTTPS, before a create, update, patch or delete is
//! stored.
//!
//! As on kube-apiserver: configurations in name order, webhooks in list order, mutating ones
//! first with their JSON patches applied in turn, then validating ones on the result; rules
//! (groups, versions, resources and subresources, operations, scope), namespaceSelector,
//! objectSelector and CEL matchConditions, failurePolicy Fail and Ignore, timeoutSeconds; the caBundle is the only
//! trust root. A `service` clientConfig reaches the address [`TestEnvBuilder::webhook_service`]
//! maps it to, with the TLS name `<name>.<namespace>.svc`.
//!
//! [`TestEnvBuilder::webhook_service`]: crate::TestEnvBuilder::webhook_service

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::admission_cel::{self, Matched, Scope};
use crate::error::ApiError;
use crate::http::rest::RestRequest;
use crate::selector::LabelSelector;
use crate::store::meta_str;

const MUTATING: &str = "admissionregistration.k8s.io/mutatingwebhookconfigurations";
const VALIDATING: &str = "admissionregistration.k8s.io/validatingwebhookconfigurations";

/// Where `service` clientConfigs are served (`namespace/name:port` to a local address),
/// and the connection pools webhooks are called through.
#[derive(Clone, Default)]
pub(crate) struct Services(
    pub HashMap<String, SocketAddr>,
    Arc<crate::webhook_client::WebhookClients>,
);

/// What the webhooks decided for one write: the patches to apply, in order, and the warnings.
#[derive(Clone, Debug, Default)]
pub(crate) struct Admitted {
    patches: Vec<json_patch::Patch>,
    pub warnings: Vec<String>,
}

impl Admitted {
    /// Applies the mutating webhooks' patches to the object being stored.
    pub fn apply(&self, obj: &mut Value) -> Result<(), ApiError> {
        for patch in &self.patches {
            apply_patch(obj, patch).map_err(|e| {
                ApiError::internal(format!("applying a mutating webhook's patch: {e}"))
            })?;
        }
        Ok(())
    }

    /// Whether any webhook changed the object.
    pub fn mutates(&self) -> bool {
        !self.patches.is_empty()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Type {
    Mutating,
    Validating,
}

/// The attributes webhooks and policies are matched on.
pub(crate) struct Attributes<'a> {
    pub(crate) operation: &'static str,
    pub(crate) group: &'a str,
    pub(crate) version: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) subresource: &'a str,
    pub(crate) namespaced: bool,
    pub(crate) namespace: &'a str,
}

/// Calls the webhooks that match `request` and returns their patches and warnings, or the
/// error the API server answers with (a denial, or a call that failed under failurePolicy Fail).
pub(crate) async fn review(request: &RestRequest, bytes: &[u8]) -> Result<Admitted, ApiError> {
    let info = &request.target.info;
    // The configurations themselves are never subject to webhooks, as on a real server.
    if info.group == "admissionregistration.k8s.io" {
        return Ok(Admitted::default());
    }
    let (mutating, validating) = {
        let state = request.server.store.read();
        let load = |storage: &str| {
            let mut configs: Vec<Value> = state
                .list(storage, None, None)
                .map(|(_, s)| s.value())
                .collect();
            configs.sort_by(|a, b| meta_str(a, "name").cmp(meta_str(b, "name")));
            configs
        };
        (load(MUTATING), load(VALIDATING))
    };
    let namespace = request.target.namespace.as_deref().unwrap_or("");
    let stored_namespace = info
        .namespaced
        .then(|| {
            request
                .server
                .store
                .read()
                .get("/namespaces", "", namespace)
        })
        .flatten();
    let policies = crate::admission_policy::any_bound(&request.server.store.read());
    // The built-in validating plugins: Pod Security, then the policies.
    let plugins = policies || crate::pod_security::applies(info, stored_namespace.as_ref());
    if mutating.is_empty() && validating.is_empty() && !plugins {
        return Ok(Admitted::default());
    }
    let (old, new) = request.preview(bytes)?;
    let operation = match (request.verb, &old) {
        ("delete", _) => "DELETE",
        (_, None) => "CREATE",
        _ => "UPDATE",
    };
    let subresource = request.target.subresource.as_deref().unwrap_or("");
    let attributes = Attributes {
        operation,
        group: &info.group,
        version: &info.version,
        resource: &info.plural,
        subresource,
        namespaced: info.namespaced,
        namespace,
    };
    let namespace_object = if info.namespaced {
        stored_namespace
    } else if info.group.is_empty() && info.plural == "namespaces" {
        new.as_ref().or(old.as_ref()).cloned()
    } else {
        None
    };
    let namespace_labels = namespace_object
        .as_ref()
        .and_then(|ns| ns.pointer("/metadata/labels").cloned());
    let versions = crate::conversion::of(info);
    // The version a webhook is called in: the request's when a rule names it, else, unless
    // its matchPolicy is Exact, the first served version a rule names (the object converted).
    let version_for = |webhook: &Value| -> Option<String> {
        if matches(webhook, &attributes) {
            return Some(info.version.clone());
        }
        if webhook.get("matchPolicy").and_then(Value::as_str) == Some("Exact") {
            return None;
        }
        versions?.served().iter().find_map(|version| {
            let equivalent = Attributes {
                version: version.as_str(),
                ..attributes
            };
            matches(webhook, &equivalent).then(|| version.clone())
        })
    };
    let selected = |webhook: &Value| {
        selects(
            webhook.get("namespaceSelector"),
            namespace_labels.as_ref(),
            info.namespaced || info.plural == "namespaces",
        ) && object_selected(webhook, old.as_ref(), new.as_ref())
    };
    let mut admitted = Admitted::default();
    let mut object = new.clone();
    let name = object
        .as_ref()
        .or(old.as_ref())
        .map(|o| meta_str(o, "name").to_string())
        .unwrap_or_else(|| request.target.name.clone().unwrap_or_default());
    let call = Call {
        services: &request.server.webhook_services,
        attributes: &attributes,
        info_kind: &info.kind,
        request_version: &info.version,
        name: &name,
        dry_run: request.query.get("dryRun").is_some_and(|v| v == "All"),
        user: &request.user,
    };
    for (r#type, configs) in [(Type::Mutating, &mutating), (Type::Validating, &validating)] {
        // Between the two phases: Pod Security and the policies, on the object as mutated.
        if r#type == Type::Validating && plugins {
            let pod_security = crate::pod_security::Request {
                info,
                operation,
                subresource,
                name: &name,
                object: object.as_ref(),
                old: old.as_ref(),
                namespace: namespace_object.as_ref().filter(|_| info.namespaced),
            };
            let state = request.server.store.read();
            admitted
                .warnings
                .extend(crate::pod_security::review(&state, &pod_security)?);
        }
        if r#type == Type::Validating && policies {
            let admission_request = call.admission_request();
            let policy_request = crate::admission_policy::Request {
                attributes: &attributes,
                name: &name,
                object: object.as_ref(),
                old: old.as_ref(),
                request: &admission_request,
                namespace: namespace_object.as_ref().filter(|_| info.namespaced),
            };
            let registry = request.server.store.registry();
            let state = request.server.store.read();
            let warnings =
                crate::admission_policy::validate(&state, info, &registry, &policy_request)?;
            admitted.warnings.extend(warnings);
        }
        for config in configs {
            for webhook in config
                .get("webhooks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(version) = version_for(webhook).filter(|_| selected(webhook)) else {
                    continue;
                };
                let equivalent = Attributes {
                    version: &version,
                    ..attributes
                };
                let call = Call {
                    attributes: &equivalent,
                    ..call
                };
                let services = &request.server.webhook_services;
                let converted = match versions.filter(|_| version != info.version) {
                    Some(versions) => {
                        Some(Converted::new(versions, services, &version, &object, &old).await?)
                    }
                    None => None,
                };
                let (seen, seen_old) = match &converted {
                    Some(c) => (c.object.as_ref(), c.old.as_ref()),
                    None => (object.as_ref(), old.as_ref()),
                };
                let Some(response) = call.matched_call(webhook, seen, seen_old, info).await? else {
                    continue;
                };
                admitted.warnings.extend(response.warnings);
                // A scale subresource's object is a Scale: its patches have nowhere to go.
                if r#type == Type::Mutating
                    && subresource != "scale"
                    && let (Some(patch), Some(obj)) = (response.patch, object.as_mut())
                {
                    let patch = match (&converted, versions) {
                        (Some(converted), Some(versions)) => {
                            converted
                                .patch_back(versions, services, &info.version, obj, &patch, webhook)
                                .await?
                        }
                        _ => patch,
                    };
                    apply_patch(obj, &patch).map_err(|e| {
                        ApiError::internal(format!(
                            "admission webhook {:?} returned a patch that does not apply: {e}",
                            webhook_name(webhook)
                        ))
                    })?;
                    admitted.patches.push(patch);
                }
            }
        }
    }
    Ok(admitted)
}

/// Applies a webhook's JSON patch; when it fails, `obj` is as it was.
///
/// On a copy rather than with `json_patch::patch`, whose undo of a failed patch panics after
/// a move into the moved value's own parent and loses the value of a move whose add failed.
fn apply_patch(obj: &mut Value, patch: &json_patch::Patch) -> Result<(), json_patch::PatchError> {
    let mut patched = obj.clone();
    json_patch::patch_unsafe(&mut patched, patch)?;
    *obj = patched;
    Ok(())
}

/// Whether the webhook's `failurePolicy` is Ignore (it is Fail by default).
fn ignores_failures(webhook: &Value) -> bool {
    webhook.get("failurePolicy").and_then(Value::as_str) == Some("Ignore")
}

fn webhook_name(webhook: &Value) -> &str {
    webhook.get("name").and_then(Value::as_str).unwrap_or("")
}

fn strings<'a>(rule: &'a Value, field: &str) -> impl Iterator<Item = &'a str> {
    rule.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Whether one of the webhook's rules covers the request.
fn matches(webhook: &Value, a: &Attributes<'_>) -> bool {
    let rules = webhook.get("rules").and_then(Value::as_array);
    rules
        .into_iter()
        .flatten()
        .any(|rule| rule_matches(rule, a))
}

/// Whether a rule (`apiGroups`, `apiVersions`, `resources`, `operations`, `scope`) covers the request.
pub(crate) fn rule_matches(rule: &Value, a: &Attributes<'_>) -> bool {
    let listed = |field: &str, value: &str| strings(rule, field).any(|s| s == "*" || s == value);
    let resource_ok = strings(rule, "resources").any(|r| {
        let (res, sub) = r.split_once('/').unwrap_or((r, ""));
        let res_ok = res == "*" || res == a.resource;
        let sub_ok = match (sub, a.subresource) {
            ("", "") => true,
            ("", _) => false,
            ("*", _) => true,
            (s, requested) => s == requested,
        };
        res_ok && sub_ok
    });
    let scope_ok = match rule.get("scope").and_then(Value::as_str).unwrap_or("*") {
        "Cluster" => !a.namespaced,
        "Namespaced" => a.namespaced,
        _ => true,
    };
    listed("operations", a.operation)
        && listed("apiGroups", a.group)
        && listed("apiVersions", a.version)
        && resource_ok
        && scope_ok
}

/// A label selector that is absent selects everything; one that cannot be parsed nothing.
pub(crate) fn selects(selector: Option<&Value>, labels: Option<&Value>, applies: bool) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        return true;
    };
    if !applies {
        return true;
    }
    LabelSelector::from_object(selector).is_ok_and(|s| s.matches(labels.and_then(Value::as_object)))
}

/// The objectSelector matches when the new or the old object's labels do.
fn object_selected(webhook: &Value, old: Option<&Value>, new: Option<&Value>) -> bool {
    let selector = webhook.get("objectSelector");
    [new, old]
        .into_iter()
        .flatten()
        .any(|obj| selects(selector, obj.pointer("/metadata/labels"), true))
        || (old.is_none() && new.is_none())
}

/// What a webhook answered.
struct Response {
    patch: Option<json_patch::Patch>,
    warnings: Vec<String>,
}

#[derive(Clone, Copy)]
struct Call<'a> {
    services: &'a Services,
    /// The attributes the webhook is called with; their version may be an equivalent one.
    attributes: &'a Attributes<'a>,
    info_kind: &'a str,
    /// The version the request named (`requestKind`, `requestResource`).
    request_version: &'a str,
    name: &'a str,
    dry_run: bool,
    user: &'a crate::authn::UserInfo,
}

/// The request's objects in another version of their CRD, for a webhook whose rules name only
/// that one (`matchPolicy: Equivalent`).
struct Converted {
    object: Option<Value>,
    old: Option<Value>,
}

impl Converted {
    async fn new(
        versions: &crate::conversion::Versions,
        services: &Services,
        version: &str,
        object: &Option<Value>,
        old: &Option<Value>,
    ) -> Result<Self, ApiError> {
        let inputs: Vec<Value> = [object, old].into_iter().flatten().cloned().collect();
        let mut converted = versions
            .convert(services, inputs, version)
            .await?
            .into_iter();
        Ok(Self {
            object: object.as_ref().and_then(|_| converted.next()),
            old: old.as_ref().and_then(|_| converted.next()),
        })
    }

    /// A webhook's patch of the converted object, as a patch of the request's `original`.
    async fn patch_back(
        &self,
        versions: &crate::conversion::Versions,
        services: &Services,
        request_version: &str,
        original: &Value,
        patch: &json_patch::Patch,
        webhook: &Value,
    ) -> Result<json_patch::Patch, ApiError> {
        let mut patched = self.object.clone().unwrap_or_default();
        apply_patch(&mut patched, patch).map_err(|e| {
            ApiError::internal(format!(
                "admission webhook {:?} returned a patch that does not apply: {e}",
                webhook_name(webhook)
            ))
        })?;
        let back = versions
            .convert(services, vec![patched], request_version)
            .await?
            .pop()
            .unwrap_or_default();
        Ok(json_patch::diff(original, &back))
    }
}

/// Where a webhook is reached: the URL kube-apiserver would name in its messages,
/// and the endpoint actually called.
struct Destination {
    url: String,
    endpoint: crate::webhook_client::Endpoint,
}

impl Call<'_> {
    /// Calls one webhook; `Ok(None)` when it failed and its failurePolicy is Ignore.
    async fn call(
        &self,
        webhook: &Value,
        object: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<Option<Response>, ApiError> {
        let name = webhook_name(webhook);
        let timeout = webhook
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(10)
            .clamp(1, 30);
        let review = self.review(object, old);
        let uid = review["request"]["uid"].clone();
        let outcome = post(
            self.services,
            webhook,
            Caller::Admission,
            Duration::from_secs(timeout),
            &review,
        )
        .await
        .map_err(|e| format!("failed to call webhook: {e}"))
        .and_then(|answer| decode(&answer, &uid));
        match outcome {
            Ok(Decision::Allowed(response)) => Ok(Some(response)),
            Ok(Decision::Denied {
                code,
                reason,
                message,
                details,
            }) => Err(denied(name, code, &reason, &message, details)),
            Err(error) => {
                if ignores_failures(webhook) {
                    tracing::warn!(webhook = name, %error, "admission webhook failed; failurePolicy Ignore");
                    Ok(None)
                } else {
                    Err(ApiError::internal(format!(
                        "failed calling webhook \"{name}\": {error}"
                    )))
                }
            }
        }
    }

    /// Calls one webhook if its `matchConditions` select the request; `Ok(None)` when they do
    /// not, or when the call failed and its failurePolicy is Ignore.
    async fn matched_call(
        &self,
        webhook: &Value,
        object: Option<&Value>,
        old: Option<&Value>,
        info: &crate::resources::ResourceInfo,
    ) -> Result<Option<Response>, ApiError> {
        match self.conditions(webhook, object, old) {
            Matched::Yes => self.call(webhook, object, old).await,
            Matched::No(_) => Ok(None),
            Matched::Error(error) if ignores_failures(webhook) => {
                tracing::warn!(webhook = webhook_name(webhook), %error, "matchConditions failed; failurePolicy Ignore");
                Ok(None)
            }
            Matched::Error(error) => Err(ApiError::forbidden(info, self.name, &error)),
        }
    }

    /// Whether the webhook's `matchConditions` (CEL) select the request.
    fn conditions(&self, webhook: &Value, object: Option<&Value>, old: Option<&Value>) -> Matched {
        let Some(conditions) = webhook.get("matchConditions").and_then(Value::as_array) else {
            return Matched::Yes;
        };
        let request = self.admission_request();
        let inputs = admission_cel::Inputs {
            object,
            old_object: old,
            request: &request,
            params: None,
            namespace: None,
        };
        admission_cel::match_conditions(conditions, &Scope::webhook(), &inputs.bindings(None))
    }

    /// The AdmissionRequest CEL expressions see as `request`: without the objects.
    fn admission_request(&self) -> Value {
        let mut request = self.review(None, None)["request"].take();
        if let Some(fields) = request.as_object_mut() {
            fields.remove("object");
            fields.remove("oldObject");
        }
        request
    }

    fn review(&self, object: Option<&Value>, old: Option<&Value>) -> Value {
        let a = self.attributes;
        let gvk = json!({"group": a.group, "version": a.version, "kind": self.info_kind});
        let gvr = json!({"group": a.group, "version": a.version, "resource": a.resource});
        let request_gvk =
            json!({"group": a.group, "version": self.request_version, "kind": self.info_kind});
        let request_gvr =
            json!({"group": a.group, "version": self.request_version, "resource": a.resource});
        let options_kind = match a.operation {
            "CREATE" => "CreateOptions",
            "DELETE" => "DeleteOptions",
            _ => "UpdateOptions",
        };
        let mut request = json!({
            "uid": uuid::Uuid::new_v4().to_string(),
            "kind": gvk,
            "resource": gvr,
            "requestKind": request_gvk,
            "requestResource": request_gvr,
            "name": self.name,
            "operation": a.operation,
            "userInfo": self.user.to_json(),
            "object": object.cloned().unwrap_or(Value::Null),
            "oldObject": old.cloned().unwrap_or(Value::Null),
            "dryRun": self.dry_run,
            "options": {"kind": options_kind, "apiVersion": "meta.k8s.io/v1"},
        });
        if !a.namespace.is_empty() {
            request["namespace"] = json!(a.namespace);
        }
        if !a.subresource.is_empty() {
            request["subResource"] = json!(a.subresource);
            request["requestSubResource"] = json!(a.subresource);
        }
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
    }
}

/// Who calls a webhook: admission calls carry `?timeout=` (the webhook's
/// `timeoutSeconds`), as kube-apiserver's do; conversion calls do not.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    Admission,
    Conversion,
}

/// Where `webhook`'s `clientConfig` is reached: its `url`, or its `service` through `services`.
fn destination(
    services: &Services,
    webhook: &Value,
    caller: Caller,
    timeout: u64,
) -> Result<Destination, String> {
    let query = |separator: char| match caller {
        Caller::Admission => format!("{separator}timeout={timeout}s"),
        Caller::Conversion => String::new(),
    };
    let config = webhook.get("clientConfig").cloned().unwrap_or(Value::Null);
    let ca_bundle = config
        .get("caBundle")
        .cloned()
        .map(serde_json::from_value::<k8s_openapi::ByteString>)
        .transpose()
        .map_err(|e| format!("invalid caBundle: {e}"))?
        .map(|b| b.0)
        .unwrap_or_default();
    if let Some(url) = config.get("url").and_then(Value::as_str) {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("invalid url {url:?}: {e}"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("url {url:?} is not https"));
        }
        let host = uri
            .host()
            .ok_or_else(|| format!("url {url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let url = format!(
            "{url}{}",
            query(if uri.query().is_some() { '&' } else { '?' })
        );
        let uri = url
            .parse()
            .map_err(|e| format!("invalid url {url:?}: {e}"))?;
        return Ok(Destination {
            endpoint: crate::webhook_client::Endpoint {
                host: uri_authority(&uri),
                uri,
                server_name: host,
                ca_bundle,
            },
            url,
        });
    }
    let service = config.get("service").cloned().unwrap_or(Value::Null);
    let name = service.get("name").and_then(Value::as_str).unwrap_or("");
    let namespace = service
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        return Err("the webhook's clientConfig has neither url nor service".to_string());
    }
    let port = service.get("port").and_then(Value::as_u64).unwrap_or(443);
    let path = service.get("path").and_then(Value::as_str).unwrap_or("/");
    let host = format!("{name}.{namespace}.svc");
    let url = format!("https://{host}:{port}{path}{}", query('?'));
    let key = format!("{namespace}/{name}:{port}");
    let addr = services.0.get(&key).ok_or_else(|| {
            format!(
                "Post \"{url}\": service \"{namespace}/{name}\" port {port} is not mapped to a local address (TestEnvBuilder::webhook_service)"
            )
        })?;
    let uri = format!("https://{addr}{path}{}", query('?'))
        .parse()
        .map_err(|e| format!("invalid service path {path:?}: {e}"))?;
    Ok(Destination {
        url,
        endpoint: crate::webhook_client::Endpoint {
            uri,
            host: format!("{host}:{port}"),
            server_name: host,
            ca_bundle,
        },
    })
}

fn uri_authority(uri: &http::Uri) -> String {
    uri.authority().map(|a| a.to_string()).unwrap_or_default()
}

/// POSTs `body` as JSON to `webhook`'s `clientConfig` within `timeout`, trusting only its
/// caBundle: the answer's body, or why the call failed (`Post "<url>": ...`).
pub(crate) async fn post(
    services: &Services,
    webhook: &Value,
    caller: Caller,
    timeout: Duration,
    body: &Value,
) -> Result<Bytes, String> {
    let to = destination(services, webhook, caller, timeout.as_secs())?;
    let body = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, services.1.post(&to.endpoint, body)).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(error)) => Err(format!("Post \"{}\": {error}", to.url)),
        Err(_) => Err(format!("Post \"{}\": context deadline exceeded", to.url)),
    }
}

enum Decision {
    Allowed(Response),
    Denied {
        code: u16,
        reason: String,
        message: String,
        details: Option<Value>,
    },
}

/// Reads an AdmissionReview answer; an error is a failed call (failurePolicy applies).
fn decode(body: &[u8], uid: &Value) -> Result<Decision, String> {
    let review: Value = serde_json::from_slice(body)
        .map_err(|e| format!("received invalid webhook response: {e}"))?;
    let response = review
        .get("response")
        .filter(|r| r.is_object())
        .ok_or("received invalid webhook response: the AdmissionReview has no response")?;
    if response.get("uid") != Some(uid) {
        return Err(format!(
            "expected response.uid={uid}, got {}",
            response.get("uid").unwrap_or(&Value::Null)
        ));
    }
    let warnings = response
        .get("warnings")
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if response.get("allowed").and_then(Value::as_bool) != Some(true) {
        let status = response.get("status").cloned().unwrap_or(Value::Null);
        let text = |field: &str| {
            status
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let code = status
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(0);
        return Ok(Decision::Denied {
            code,
            reason: text("reason"),
            message: text("message"),
            details: status.get("details").filter(|d| d.is_object()).cloned(),
        });
    }
    let patch = match response.get("patch") {
        None | Some(Value::Null) => None,
        Some(raw) => {
            if let Some(kind) = response.get("patchType").and_then(Value::as_str)
                && kind != "JSONPatch"
            {
                return Err(format!("unsupported patch type {kind:?}"));
            }
            // Go's []byte is base64 in JSON; serde's Vec<u8> (kube's AdmissionResponse) an array of numbers.
            let bytes = match raw {
                Value::Array(items) => items
                    .iter()
                    .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or("the patch is not an array of bytes")?,
                other => {
                    serde_json::from_value::<k8s_openapi::ByteString>(other.clone())
                        .map_err(|e| format!("the patch is not base64: {e}"))?
                        .0
                }
            };
            Some(
                serde_json::from_slice::<json_patch::Patch>(&bytes)
                    .map_err(|e| format!("the patch is not a JSON patch: {e}"))?,
            )
        }
    };
    Ok(Decision::Allowed(Response { patch, warnings }))
}

/// The error a denial returns, as kube-apiserver's `ToStatusErr` makes it: the webhook's
/// Status with its reason and details kept, a code below 400 made 403, and the message
/// prefixed with the webhook's name.
fn denied(name: &str, code: u16, reason: &str, message: &str, details: Option<Value>) -> ApiError {
    let prefix = format!("admission webhook \"{name}\" denied the request");
    let message = match (message.is_empty(), reason.is_empty()) {
        (false, _) => format!("{prefix}: {message}"),
        (true, false) => format!("{prefix}: {reason}"),
        (true, true) => format!("{prefix} without explanation"),
    };
    // A code of four digits could not go out as an HTTP status at all.
    let code = if (400..1000).contains(&code) {
        code
    } else {
        403
    };
    ApiError {
        code,
        reason: reason.to_string().into(),
        message,
        details,
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use proptest::prelude::*;

    const UID: &str = "0b6f5e1c-7a4e-4d2b-9c1a-2f3e4d5c6b7a";

    /// Keys drawn from the few names the pointers use, so patches often hit.
    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<f64>().prop_map(|f| json!(f)),
            "[ab0~/-]{0,3}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[ab0]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Mostly well-formed pointers into `arb_json` values, sometimes not a pointer at all.
    fn arb_pointer() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "(/([ab0-]|~0|00|)){0,3}",
            1 => "[ab0~/-]{0,4}",
        ]
    }

    /// Mostly there: an operation missing a field is refused before it can be applied.
    fn present<T: Strategy>(field: T) -> impl Strategy<Value = Option<T::Value>> {
        prop::option::weighted(0.9, field)
    }

    fn arb_op() -> impl Strategy<Value = Value> {
        (
            prop_oneof![
                6 => "add|remove|replace|move|copy|test",
                1 => "[a-z]{0,4}",
            ],
            present(arb_pointer()),
            present(arb_pointer()),
            prop::option::weighted(0.3, ("[ab0-]", any::<bool>())),
            present(arb_json()),
        )
            .prop_map(|(op, path, from, related, value)| {
                // Between a value and its own child or parent: json_patch's undo of such a move
                // panicked.
                let (path, from) = match (path, related) {
                    (Some(path), Some((child, down))) => {
                        let nested = format!("{path}/{child}");
                        if down {
                            (Some(nested), Some(path))
                        } else {
                            (Some(path), Some(nested))
                        }
                    }
                    (path, _) => (path, from),
                };
                let mut o = json!({"op": op});
                for (k, v) in [
                    ("path", path.map(Value::String)),
                    ("from", from.map(Value::String)),
                    ("value", value),
                ] {
                    if let Some(v) = v {
                        o[k] = v;
                    }
                }
                o
            })
    }

    fn arb_ops() -> impl Strategy<Value = Vec<Value>> {
        prop::collection::vec(arb_op(), 0..5)
    }

    /// A `response.patch` in every shape a webhook might send.
    fn arb_patch_field() -> impl Strategy<Value = Value> {
        let bytes_of = |ops: Vec<Value>| serde_json::to_vec(&ops).unwrap_or_default();
        prop_oneof![
            arb_ops().prop_map(move |ops| json!(BASE64.encode(bytes_of(ops)))),
            arb_ops().prop_map(move |ops| json!(bytes_of(ops))),
            prop::collection::vec(any::<u8>(), 0..32).prop_map(|b| json!(BASE64.encode(&b))),
            prop::collection::vec(any::<u8>(), 0..32).prop_map(|b| json!(b)),
            // Numbers that are not bytes: negative, too large, fractional.
            prop::collection::vec(
                prop_oneof![
                    any::<i64>().prop_map(|i| json!(i)),
                    any::<f64>().prop_map(|f| json!(f))
                ],
                0..8
            )
            .prop_map(Value::Array),
            any::<String>().prop_map(Value::String),
            arb_json(),
        ]
    }

    fn arb_code() -> impl Strategy<Value = Value> {
        prop_oneof![
            (0i64..1200).prop_map(|c| json!(c)),
            any::<i64>().prop_map(|c| json!(c)),
            any::<u64>().prop_map(|c| json!(c)),
            any::<f64>().prop_map(|c| json!(c)),
            (0i64..1200).prop_map(|c| json!(c.to_string())),
            arb_json(),
        ]
    }

    fn arb_status() -> impl Strategy<Value = Value> {
        let text = || {
            prop_oneof![
                "BadRequest|Invalid|NotFound|Conflict|Unauthorized|Forbidden"
                    .prop_map(Value::String),
                any::<String>().prop_map(Value::String),
                arb_json(),
            ]
        };
        prop_oneof![
            3 => (
                prop::option::of(arb_code()),
                prop::option::of(text()),
                prop::option::of(text()),
            )
                .prop_map(|(code, reason, message)| {
                    let mut s = json!({});
                    for (k, v) in [("code", code), ("reason", reason), ("message", message)] {
                        if let Some(v) = v {
                            s[k] = v;
                        }
                    }
                    s
                }),
            1 => arb_json(),
        ]
    }

    /// An AdmissionReview answer whose fields are each present or absent and of any type.
    fn arb_review() -> impl Strategy<Value = Value> {
        let uid = prop_oneof![3 => Just(json!(UID)), 1 => arb_json()];
        let allowed = prop_oneof![Just(json!(true)), Just(json!(false)), arb_json()];
        let patch_type = prop_oneof![
            Just(json!("JSONPatch")),
            any::<String>().prop_map(Value::String),
            arb_json()
        ];
        let warnings = prop_oneof![
            prop::collection::vec(
                prop_oneof![any::<String>().prop_map(Value::String), arb_json()],
                0..4
            )
            .prop_map(Value::Array),
            arb_json(),
        ];
        let fields = (
            prop::option::of(uid),
            prop::option::of(allowed),
            prop::option::of(arb_status()),
            prop::option::of(arb_patch_field()),
            prop::option::of(patch_type),
            prop::option::of(warnings),
        );
        let response = prop_oneof![
            6 => fields.prop_map(|(uid, allowed, status, patch, patch_type, warnings)| {
                let mut r = json!({});
                for (k, v) in [
                    ("uid", uid),
                    ("allowed", allowed),
                    ("status", status),
                    ("patch", patch),
                    ("patchType", patch_type),
                    ("warnings", warnings),
                ] {
                    if let Some(v) = v {
                        r[k] = v;
                    }
                }
                r
            }),
            1 => arb_json(),
        ];
        response.prop_map(|response| {
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
        })
    }

    /// Whether the review is a well-formed answer to `UID` that does not allow the request.
    fn is_denial(review: &Value) -> bool {
        let r = &review["response"];
        r.is_object() && r.get("uid") == Some(&json!(UID)) && r.get("allowed") != Some(&json!(true))
    }

    #[test]
    fn a_failing_patch_leaves_the_object_as_it_was() {
        let cases = [
            // json_patch::patch's undo of this move is a move inside itself: it panicked.
            (
                json!({"a": {"b": 1}}),
                json!([
                    {"op": "move", "from": "/a/b", "path": "/a"},
                    {"op": "test", "path": "/a", "value": 2},
                ]),
            ),
            // The move's remove succeeded, its add failed, and the value was lost.
            (
                json!({"0": null}),
                json!([{"op": "move", "from": "/0", "path": "/-/0"}]),
            ),
        ];
        for (obj, patch) in cases {
            let admitted = Admitted {
                patches: vec![serde_json::from_value(patch).unwrap()],
                warnings: vec![],
            };
            let mut patched = obj.clone();
            assert!(admitted.apply(&mut patched).is_err());
            assert_eq!(patched, obj);
        }
    }

    #[test]
    fn denials_keep_the_webhooks_code_reason_and_details() {
        // StatusCode::from_u16 refuses codes above 999, and the answer became a 200.
        for code in [0, 200, 399, 1000, u16::MAX] {
            assert_eq!(denied("w", code, "", "", None).code, 403);
        }
        let details = json!({"name": "x", "causes": [{"field": "spec.size"}]});
        let error = denied("w", 409, "AlreadyExists", "taken", Some(details.clone()));
        assert_eq!((error.code, error.reason.as_ref()), (409, "AlreadyExists"));
        assert_eq!(
            error.message,
            "admission webhook \"w\" denied the request: taken"
        );
        assert_eq!(error.to_status()["details"], details);
        let bare = denied("w", 403, "", "", None);
        assert_eq!(
            bare.message,
            "admission webhook \"w\" denied the request without explanation"
        );
        assert!(bare.to_status().get("reason").is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn arbitrary_bytes_never_panic(
            noise in prop::collection::vec(any::<u8>(), 0..256),
            review in arb_review(),
            cut in any::<prop::sample::Index>(),
        ) {
            let _ = decode(&noise, &json!(UID));
            // Truncated real answers reach further into the parser than noise does.
            let bytes = serde_json::to_vec(&review).unwrap_or_default();
            let _ = decode(&bytes[..cut.index(bytes.len() + 1)], &json!(UID));
        }

        #[test]
        fn arbitrary_reviews_never_panic_and_denials_are_errors(review in arb_review()) {
            let bytes = serde_json::to_vec(&review).unwrap_or_default();
            let decided = decode(&bytes, &json!(UID));
            if is_denial(&review) {
                prop_assert!(
                    matches!(decided, Ok(Decision::Denied { .. })),
                    "a denial decoded as something else"
                );
            }
            if let Ok(Decision::Denied { code, reason, message, details }) = decided {
                let error = denied("w", code, &reason, &message, details);
                prop_assert!(
                    (400..1000).contains(&error.code),
                    "status.code {:?} became {}", review["response"]["status"]["code"], error.code
                );
                prop_assert!(error.message.starts_with("admission webhook \"w\" denied the request"));
            }
        }

        #[test]
        fn a_mismatched_uid_is_an_error(review in arb_review(), uid in arb_json()) {
            prop_assume!(review["response"].get("uid") != Some(&uid));
            let bytes = serde_json::to_vec(&review).unwrap_or_default();
            prop_assert!(decode(&bytes, &uid).is_err());
        }
    }

    proptest! {
        // More cases: the undo panic needed a move into the parent and a later failing op.
        #![proptest_config(ProptestConfig::with_cases(8192))]

        #[test]
        fn decoded_patches_apply_without_panicking(
            ops in arb_ops(),
            as_base64 in any::<bool>(),
            mut obj in prop::collection::btree_map("[ab0]", arb_json(), 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ) {
            let bytes = serde_json::to_vec(&ops).unwrap_or_default();
            let patch = if as_base64 { json!(BASE64.encode(&bytes)) } else { json!(bytes) };
            let review = json!({"response": {"uid": UID, "allowed": true, "patch": patch, "patchType": "JSONPatch"}});
            let decided = decode(&serde_json::to_vec(&review).unwrap_or_default(), &json!(UID));
            // From the same bytes: serde_json's float parsing does not round-trip exactly.
            let expected = serde_json::from_slice::<json_patch::Patch>(&bytes).ok();
            match decided {
                Ok(Decision::Allowed(Response { patch: Some(patch), .. })) => {
                    prop_assert_eq!(Some(&patch), expected.as_ref());
                    let before = obj.clone();
                    let admitted = Admitted { patches: vec![patch], warnings: vec![] };
                    if admitted.apply(&mut obj).is_err() {
                        prop_assert_eq!(obj, before, "a failed patch leaves the object as it was");
                    }
                }
                Ok(_) => prop_assert!(false, "an allowed answer with a patch decoded without one"),
                Err(_) => prop_assert!(expected.is_none(), "a valid JSON patch was refused"),
            }
        }
    }
}
