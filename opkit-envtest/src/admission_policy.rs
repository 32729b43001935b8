//! ValidatingAdmissionPolicies and their bindings (`admissionregistration.k8s.io/v1`):
//! CEL validations the server evaluates itself before a write, as kube-apiserver's
//! ValidatingAdmissionPolicy plugin does.
//!
//! A policy applies to the requests its `matchConstraints` select (resource rules,
//! exclusions, namespace and object selectors), through each binding whose
//! `matchResources` also select them, with each parameter object the binding's
//! `paramRef` finds; its `matchConditions`, `variables` and `validations` are CEL.
//! A failed validation denies the request (`Deny`) or becomes a warning (`Warn`),
//! as the binding's `validationActions` say; errors follow the `failurePolicy`.

use crate::admission::{Attributes, rule_matches, selects};
use crate::admission_cel::{self, Budget, Inputs, Matched, Scope};
use crate::cel::{Kind, RUNTIME_BUDGET};
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::schema::{Bad, FieldError};
use crate::selector::LabelSelector;
use crate::store::{State, meta_str, storage_key};
use kube::core::cel::cel::Value as CelValue;
use kube::core::cel::cel::objects::{Key, Map};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

const POLICIES: &str = "admissionregistration.k8s.io/validatingadmissionpolicies";
const BINDINGS: &str = "admissionregistration.k8s.io/validatingadmissionpolicybindings";

/// A string field of `value`, empty when absent.
fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value.get(field).and_then(Value::as_str).unwrap_or("")
}

/// The items of a list field of `value`, none when absent.
fn items<'a>(value: &'a Value, field: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Whether any policy is bound, so requests need evaluating at all.
pub(crate) fn any_bound(state: &State) -> bool {
    state.list(BINDINGS, None, None).next().is_some()
}

/// A request as policies see it.
pub(crate) struct Request<'a> {
    pub(crate) attributes: &'a Attributes<'a>,
    pub(crate) name: &'a str,
    pub(crate) object: Option<&'a Value>,
    pub(crate) old: Option<&'a Value>,
    /// The AdmissionRequest CEL's `request` is, without its objects.
    pub(crate) request: &'a Value,
    pub(crate) namespace: Option<&'a Value>,
}

/// A policy's decision to deny, and on what grounds.
struct Denial {
    policy: String,
    binding: Option<String>,
    message: String,
    reason: Option<String>,
}

/// Evaluates every bound policy that selects the request; returns the
/// warnings they add, or the error of the first denial.
pub(crate) fn validate(
    state: &State,
    info: &ResourceInfo,
    registry: &[ResourceInfo],
    request: &Request<'_>,
) -> Result<Vec<String>, ApiError> {
    let mut warnings = Vec::new();
    let mut denials = Vec::new();
    let mut policies: Vec<Value> = state
        .list(POLICIES, None, None)
        .map(|(_, s)| s.value())
        .collect();
    policies.sort_by(|a, b| meta_str(a, "name").cmp(meta_str(b, "name")));
    let bindings: Vec<Value> = state
        .list(BINDINGS, None, None)
        .map(|(_, s)| s.value())
        .collect();
    for policy in &policies {
        let policy_name = meta_str(policy, "name");
        let spec = policy.get("spec").unwrap_or(&Value::Null);
        if !resources_match(spec.get("matchConstraints"), request) {
            continue;
        }
        let fail = spec.get("failurePolicy").and_then(Value::as_str) != Some("Ignore");
        let mut bound: Vec<&Value> = bindings
            .iter()
            .filter(|b| b.pointer("/spec/policyName").and_then(Value::as_str) == Some(policy_name))
            .collect();
        bound.sort_by(|a, b| meta_str(a, "name").cmp(meta_str(b, "name")));
        for binding in bound {
            let binding_name = meta_str(binding, "name");
            let binding_spec = binding.get("spec").unwrap_or(&Value::Null);
            if let Some(constraints) = binding_spec.get("matchResources").filter(|m| !m.is_null())
                && !resources_match(Some(constraints), request)
            {
                continue;
            }
            let deny = |message: String, reason: Option<String>| Denial {
                policy: policy_name.to_string(),
                binding: Some(binding_name.to_string()),
                message,
                reason,
            };
            let params = match params(state, registry, spec, binding_spec, request) {
                Ok(params) => params,
                Err(error) => {
                    if fail {
                        denials.push(deny(format!("failed to configure binding: {error}"), None));
                    }
                    continue;
                }
            };
            let actions: Vec<&str> = items(binding_spec, "validationActions")
                .filter_map(Value::as_str)
                .collect();
            for param in params {
                for decision in evaluate(spec, request, param.as_ref(), fail) {
                    if actions.contains(&"Deny") {
                        denials.push(deny(decision.message.clone(), decision.reason.clone()));
                    }
                    if actions.contains(&"Warn") {
                        warnings.push(format!(
                            "Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding '{binding_name}': {}",
                            decision.message
                        ));
                    }
                }
            }
        }
    }
    match denials.into_iter().next() {
        Some(denial) => Err(denied(info, request.name, denial)),
        None => Ok(warnings),
    }
}

/// The error a denial answers with: `Forbidden`'s message, the validation's reason and its code.
fn denied(info: &ResourceInfo, name: &str, denial: Denial) -> ApiError {
    let message = match &denial.binding {
        Some(binding) => format!(
            "ValidatingAdmissionPolicy '{}' with binding '{binding}' denied request: {}",
            denial.policy, denial.message
        ),
        None => format!(
            "ValidatingAdmissionPolicy '{}' denied request: {}",
            denial.policy, denial.message
        ),
    };
    let (reason, code) = match denial.reason.as_deref() {
        Some("Unauthorized") => ("Unauthorized", 401),
        Some("Forbidden") => ("Forbidden", 403),
        Some("RequestEntityTooLarge") => ("RequestEntityTooLarge", 413),
        _ => ("Invalid", 422),
    };
    let mut error = ApiError::forbidden(info, name, &message);
    error.code = code;
    error.reason = reason.into();
    if let Some(details) = error.details.as_mut() {
        details["causes"] = serde_json::json!([{"message": message}]);
    }
    error
}

/// Whether `matchConstraints` or a binding's `matchResources` select the request.
fn resources_match(constraints: Option<&Value>, request: &Request<'_>) -> bool {
    let Some(c) = constraints.filter(|c| !c.is_null()) else {
        return false;
    };
    let a = request.attributes;
    let named = |rule: &Value| {
        let names: Vec<&str> = items(rule, "resourceNames")
            .filter_map(Value::as_str)
            .collect();
        rule_matches(rule, a) && (names.is_empty() || names.contains(&request.name))
    };
    let rules = |field: &str| c.get(field).and_then(Value::as_array).into_iter().flatten();
    // A binding without resource rules covers all its policy does.
    let included = rules("resourceRules").next().is_none() || rules("resourceRules").any(named);
    let excluded = rules("excludeResourceRules").any(named);
    let namespace_labels = request
        .namespace
        .and_then(|ns| ns.pointer("/metadata/labels"));
    let object_selected = [request.object, request.old]
        .into_iter()
        .flatten()
        .any(|o| selects(c.get("objectSelector"), o.pointer("/metadata/labels"), true));
    included
        && !excluded
        && selects(c.get("namespaceSelector"), namespace_labels, a.namespaced)
        && object_selected
}

/// The parameter objects a binding gives the policy: `[None]` when the
/// policy takes none, the error when it is misconfigured.
fn params(
    state: &State,
    registry: &[ResourceInfo],
    spec: &Value,
    binding: &Value,
    request: &Request<'_>,
) -> Result<Vec<Option<Value>>, String> {
    let Some(kind) = spec.get("paramKind").filter(|k| !k.is_null()) else {
        return Ok(vec![None]);
    };
    let Some(reference) = binding.get("paramRef").filter(|r| !r.is_null()) else {
        return Ok(vec![None]);
    };
    let api_version = text(kind, "apiVersion");
    let kind_name = text(kind, "kind");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let Some(info) = registry
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind_name)
    else {
        return Err(format!(
            "paramKind kind `{group}/{version}, Kind={kind_name}` not known"
        ));
    };
    let ref_namespace = text(reference, "namespace");
    let namespace = if !info.namespaced {
        if !ref_namespace.is_empty() {
            return Err(
                "paramRef.namespace must not be provided for a cluster-scoped `paramKind`".into(),
            );
        }
        ""
    } else if !ref_namespace.is_empty() {
        ref_namespace
    } else if request.attributes.namespace.is_empty() {
        return Err("cannot use namespaced paramRef in policy binding that matches cluster-scoped resources".into());
    } else {
        request.attributes.namespace
    };
    let storage = storage_key(info);
    let found: Vec<Option<Value>> = match reference.get("name").and_then(Value::as_str) {
        Some(name) if !name.is_empty() => state
            .get(&storage, namespace, name)
            .into_iter()
            .map(Some)
            .collect(),
        _ => {
            let selector = reference.get("selector").cloned().unwrap_or(Value::Null);
            let selector = LabelSelector::from_object(&selector).map_err(|e| e.to_string())?;
            let scope = (!namespace.is_empty()).then_some(namespace);
            state
                .list(&storage, scope, None)
                .map(|(_, s)| s.value())
                .filter(|o| {
                    selector.matches(o.pointer("/metadata/labels").and_then(Value::as_object))
                })
                .map(Some)
                .collect()
        }
    };
    let deny = reference
        .get("parameterNotFoundAction")
        .and_then(Value::as_str)
        == Some("Deny");
    if found.is_empty() && deny {
        return Err(
            "no params found for policy binding with `Deny` parameterNotFoundAction".into(),
        );
    }
    Ok(found)
}

/// A validation that failed (or could not be evaluated under failurePolicy Fail).
struct Decision {
    message: String,
    reason: Option<String>,
}

/// The policy's scope: its variables' names, in order.
fn scope(spec: &Value) -> Scope {
    let variables = items(spec, "variables")
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    Scope {
        policy: true,
        variables,
    }
}

/// Evaluates the policy for one parameter object: its match conditions,
/// variables and validations, within the runtime budget.
fn evaluate(
    spec: &Value,
    request: &Request<'_>,
    param: Option<&Value>,
    fail: bool,
) -> Vec<Decision> {
    let scope = scope(spec);
    let inputs = Inputs {
        object: request.object,
        old_object: request.old,
        request: request.request,
        params: param,
        namespace: request.namespace,
    };
    let error = |message: String| {
        if fail {
            vec![Decision {
                message,
                reason: None,
            }]
        } else {
            Vec::new()
        }
    };
    let conditions = spec.get("matchConditions").and_then(Value::as_array);
    if let Some(conditions) = conditions.filter(|c| !c.is_empty()) {
        match admission_cel::match_conditions(conditions, &scope, &inputs.bindings(None)) {
            Matched::Yes => {}
            Matched::No(_) => return Vec::new(),
            Matched::Error(message) => return error(message),
        }
    }
    let mut budget = Budget(RUNTIME_BUDGET);
    let mut computed = HashMap::new();
    let mut failed_variables = Vec::new();
    for variable in items(spec, "variables") {
        let name = text(variable, "name");
        let source = text(variable, "expression");
        let bindings = inputs.bindings(Some(variables(&computed)));
        match budget.eval(&admission_cel::compile(source, &scope), source, &bindings) {
            Ok(value) => {
                computed.insert(name.to_string(), value);
            }
            Err(Some(message)) => {
                failed_variables.push((name.to_string(), message));
            }
            Err(None) => return error(admission_cel::OUT_OF_BUDGET.to_string()),
        }
    }
    let bindings = inputs.bindings(Some(variables(&computed)));
    let mut decisions = Vec::new();
    for validation in items(spec, "validations") {
        let source = text(validation, "expression");
        let expression = admission_cel::compile(source, &scope);
        let failed_variable = failed_variables.iter().find(|(name, _)| {
            (*expression)
                .as_ref()
                .is_ok_and(|c| c.program.uses_field("variables", name))
        });
        if let Some((name, message)) = failed_variable {
            decisions.extend(error(format!(
                "composited variable \"{name}\" fails to evaluate: {message}"
            )));
            continue;
        }
        match budget.eval(&expression, source, &bindings) {
            Ok(CelValue::Bool(true)) => {}
            Ok(_) => decisions.push(Decision {
                message: message(validation, &scope, &bindings, &mut budget),
                reason: Some(
                    validation
                        .get("reason")
                        .and_then(Value::as_str)
                        .unwrap_or("Invalid")
                        .to_string(),
                ),
            }),
            Err(Some(message)) => decisions.extend(error(message)),
            Err(None) => {
                decisions.extend(error(admission_cel::OUT_OF_BUDGET.to_string()));
                break;
            }
        }
    }
    decisions
}

/// The `variables` value: the computed variables by name.
fn variables(computed: &HashMap<String, CelValue>) -> CelValue {
    let entries = computed
        .iter()
        .map(|(name, value)| (Key::String(Arc::new(name.clone())), value.clone()))
        .collect();
    CelValue::Map(Map {
        map: Arc::new(entries),
    })
}

/// A failed validation's message: its `messageExpression`, else its
/// `message`, else `failed expression: <expression>`.
fn message(
    validation: &Value,
    scope: &Scope,
    bindings: &crate::cel::Bindings,
    budget: &mut Budget,
) -> String {
    if let Some(source) = validation.get("messageExpression").and_then(Value::as_str) {
        let expression = admission_cel::compile(source, scope);
        if let Ok(CelValue::String(text)) = budget.eval(&expression, source, bindings) {
            let text = text.trim();
            if !text.is_empty() && !text.contains('\n') {
                return text.to_string();
            }
        }
    }
    match validation.get("message").and_then(Value::as_str) {
        Some(message) if !message.is_empty() => message.to_string(),
        _ => format!(
            "failed expression: {}",
            text(validation, "expression").trim()
        ),
    }
}

/// Checks a policy or binding as the API server does on write: required
/// fields, allowed values, and that every expression compiles.
pub(crate) fn check(kind: &str, object: &Value) -> Vec<FieldError> {
    let spec = object.get("spec").unwrap_or(&Value::Null);
    match kind {
        "ValidatingAdmissionPolicy" => check_policy(spec),
        "ValidatingAdmissionPolicyBinding" => check_binding(spec),
        _ => Vec::new(),
    }
}

fn check_policy(spec: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let scope = scope(spec);
    let list = |field: &str| {
        spec.get(field)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let validations = list("validations");
    if validations.is_empty() && list("auditAnnotations").is_empty() {
        errors.push(FieldError::required(
            "spec.validations",
            "validations or auditAnnotations must contain at least one item",
        ));
    }
    match spec.get("matchConstraints").filter(|m| !m.is_null()) {
        None => errors.push(FieldError::required("spec.matchConstraints", "")),
        Some(m)
            if m.get("resourceRules")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty) =>
        {
            errors.push(FieldError::required(
                "spec.matchConstraints.resourceRules",
                "",
            ));
        }
        Some(_) => {}
    }
    if let Some(policy) = spec.get("failurePolicy").and_then(Value::as_str)
        && policy != "Fail"
        && policy != "Ignore"
    {
        errors.push(FieldError::not_supported(
            "spec.failurePolicy",
            &Value::String(policy.into()),
            &["Fail".into(), "Ignore".into()],
        ));
    }
    errors.extend(admission_cel::check_match_conditions(
        spec.get("matchConditions"),
        &scope,
        "spec.matchConditions",
    ));
    // A variable sees only those declared before it.
    for (i, variable) in list("variables").iter().enumerate() {
        let at = format!("spec.variables[{i}]");
        let name = text(variable, "name");
        if name.is_empty() {
            errors.push(FieldError::required(
                &format!("{at}.name"),
                "name is not specified",
            ));
        }
        let before = Scope {
            policy: true,
            variables: scope.variables[..i].to_vec(),
        };
        let source = text(variable, "expression");
        errors.extend(admission_cel::check(
            source,
            &before,
            &format!("{at}.expression"),
            None,
        ));
    }
    for (i, validation) in validations.iter().enumerate() {
        let at = format!("spec.validations[{i}]");
        let source = text(validation, "expression");
        errors.extend(admission_cel::check(
            source,
            &scope,
            &format!("{at}.expression"),
            Some(Kind::Bool),
        ));
        if let Some(message) = validation.get("messageExpression").and_then(Value::as_str) {
            errors.extend(admission_cel::check(
                message,
                &scope,
                &format!("{at}.messageExpression"),
                Some(Kind::String),
            ));
        }
        if let Some(reason) = validation.get("reason").and_then(Value::as_str) {
            let supported = [
                "Unauthorized",
                "Forbidden",
                "Invalid",
                "RequestEntityTooLarge",
            ];
            if !supported.contains(&reason) {
                let supported: Vec<String> = supported.iter().map(|s| s.to_string()).collect();
                errors.push(FieldError::not_supported(
                    &format!("{at}.reason"),
                    &Value::String(reason.into()),
                    &supported,
                ));
            }
        }
    }
    errors
}

fn check_binding(spec: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if text(spec, "policyName").is_empty() {
        errors.push(FieldError::required("spec.policyName", ""));
    }
    let actions: Vec<&str> = items(spec, "validationActions")
        .filter_map(Value::as_str)
        .collect();
    if actions.is_empty() {
        errors.push(FieldError::required(
            "spec.validationActions",
            "at least one validation action is required",
        ));
    }
    for (i, action) in actions.iter().enumerate() {
        if !["Deny", "Warn", "Audit"].contains(action) {
            errors.push(FieldError::not_supported(
                &format!("spec.validationActions[{i}]"),
                &Value::String(action.to_string()),
                &["Audit".into(), "Deny".into(), "Warn".into()],
            ));
        } else if actions[..i].contains(action) {
            errors.push(FieldError::duplicate(
                &format!("spec.validationActions[{i}]"),
                &Value::String(action.to_string()),
            ));
        }
    }
    if actions.contains(&"Deny") && actions.contains(&"Warn") {
        let list: Vec<String> = actions.iter().map(|a| format!("{a:?}")).collect();
        errors.push(FieldError::invalid(
            "spec.validationActions",
            Bad::Raw(&format!("[]v1.ValidationAction{{{}}}", list.join(", "))),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
    if let Some(reference) = spec.get("paramRef").filter(|r| !r.is_null()) {
        let named = reference
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let selected = reference.get("selector").is_some_and(|s| !s.is_null());
        if named && selected {
            errors.push(FieldError::forbidden(
                "spec.paramRef.name",
                "name and selector are mutually exclusive",
            ));
        } else if !named && !selected {
            errors.push(FieldError::required(
                "spec.paramRef",
                "one of name or selector must be set",
            ));
        }
        match reference
            .get("parameterNotFoundAction")
            .and_then(Value::as_str)
        {
            None => errors.push(FieldError::required(
                "spec.paramRef.parameterNotFoundAction",
                "",
            )),
            Some("Allow" | "Deny") => {}
            Some(other) => errors.push(FieldError::not_supported(
                "spec.paramRef.parameterNotFoundAction",
                &Value::String(other.into()),
                &["Allow".into(), "Deny".into()],
            )),
        }
    }
    errors
}
