//! CertificateSigningRequests as kube-apiserver's strategy treats them: the
//! requester recorded on create, the request checked to be a PEM certificate
//! request, and the `approval` subresource that writes only conditions.

use crate::authn::UserInfo;
use crate::error::ApiError;
use crate::meta;
use crate::schema::FieldError;
use base64::Engine as _;
use serde_json::{Value, json};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

/// Records who asks (`spec.username`, `uid`, `groups`, `extra`), drops any status, and
/// checks the request: 400 for a request that is not base64, 422 for one that is not a
/// PEM `CERTIFICATE REQUEST` or lacks its signer.
pub(crate) fn prepare_create(
    user: &UserInfo,
    csr: &mut Value,
) -> Result<Vec<FieldError>, ApiError> {
    if let Some(map) = csr.as_object_mut() {
        map.remove("status");
    }
    let requester = user.to_json();
    if let Some(spec) = csr.get_mut("spec").and_then(Value::as_object_mut) {
        for field in ["username", "uid", "groups", "extra"] {
            match requester.get(field) {
                Some(value) => spec.insert(field.into(), value.clone()),
                None => spec.remove(field),
            };
        }
    }
    let mut errors = Vec::new();
    let request = csr.pointer("/spec/request").and_then(Value::as_str);
    match request.filter(|r| !r.is_empty()) {
        None => errors.push(required("spec.request")),
        Some(encoded) => {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "CertificateSigningRequest in version \"v1\" cannot be handled as a CertificateSigningRequest: {e}"
                    ))
                })?;
            if !is_certificate_request(&pem) {
                errors.push(FieldError {
                    field: "spec.request".into(),
                    reason: "FieldValueInvalid",
                    message:
                        "Invalid value: []byte{...}: PEM block type must be CERTIFICATE REQUEST"
                            .into(),
                });
            }
        }
    }
    if csr
        .pointer("/spec/signerName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        errors.push(required("spec.signerName"));
    }
    Ok(errors)
}

fn required(field: &str) -> FieldError {
    FieldError {
        field: field.into(),
        reason: "FieldValueRequired",
        message: "Required value".into(),
    }
}

fn is_certificate_request(pem: &[u8]) -> bool {
    match x509_parser::pem::parse_x509_pem(pem) {
        Ok((_, block)) => {
            block.label == "CERTIFICATE REQUEST"
                && X509CertificationRequest::from_der(&block.contents).is_ok()
        }
        Err(_) => false,
    }
}

/// What an `approval` write stores: the old object with the request's conditions, their
/// times filled in when absent.
pub(crate) fn approval(old: &Value, new: &Value) -> Value {
    let now = meta::now();
    let conditions: Vec<Value> = new
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut condition| {
            for time in ["lastUpdateTime", "lastTransitionTime"] {
                if condition.get(time).is_none_or(Value::is_null) {
                    condition[time] = json!(now);
                }
            }
            condition
        })
        .collect();
    let mut written = old.clone();
    if !written.get("status").is_some_and(Value::is_object) {
        written["status"] = json!({});
    }
    written["status"]["conditions"] = json!(conditions);
    if let Some(rv) = new.pointer("/metadata/resourceVersion") {
        written["metadata"]["resourceVersion"] = rv.clone();
    }
    written
}

/// The approval validation: every condition has a type and a valid status, Approved and
/// Denied exclude each other, and neither is ever removed.
pub(crate) fn check_approval(old: &Value, new: &Value) -> Vec<FieldError> {
    let conditions = |obj: &Value| -> Vec<Value> {
        obj.pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let current = conditions(new);
    let mut errors = Vec::new();
    let mut decided: Option<&str> = None;
    for (i, condition) in current.iter().enumerate() {
        let field = format!("status.conditions[{i}]");
        let kind = condition["type"].as_str().unwrap_or("");
        if kind.is_empty() {
            errors.push(required(&format!("{field}.type")));
        }
        let status = condition["status"].as_str().unwrap_or("");
        if !matches!(status, "True" | "False" | "Unknown") {
            errors.push(FieldError {
                field: format!("{field}.status"),
                reason: "FieldValueNotSupported",
                message: format!(
                    "Unsupported value: \"{status}\": supported values: \"False\", \"True\", \"Unknown\""
                ),
            });
        }
        if matches!(kind, "Approved" | "Denied") {
            match decided {
                Some(other) if other != kind => errors.push(FieldError {
                    field: format!("{field}.type"),
                    reason: "FieldValueInvalid",
                    message: format!(
                        "Invalid value: \"{kind}\": Approved and Denied conditions are mutually exclusive"
                    ),
                }),
                Some(_) => errors.push(FieldError {
                    field: format!("{field}.type"),
                    reason: "FieldValueDuplicate",
                    message: format!("Duplicate value: \"{kind}\""),
                }),
                None => decided = Some(kind),
            }
        }
    }
    for kind in ["Approved", "Denied"] {
        let had = conditions(old).iter().any(|c| c["type"] == kind);
        if had && !current.iter().any(|c| c["type"] == kind) {
            errors.push(FieldError {
                field: "status.conditions".into(),
                reason: "FieldValueForbidden",
                message: format!(
                    "Forbidden: updates may not remove a condition of type \"{kind}\""
                ),
            });
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_writes_only_conditions() {
        let old = json!({"metadata": {"name": "c", "resourceVersion": "4"}, "spec": {"signerName": "x"},
            "status": {"certificate": "Y2VydA=="}});
        let new = json!({"metadata": {"name": "c"}, "spec": {"signerName": "changed"},
            "status": {"certificate": null, "conditions": [{"type": "Approved", "status": "True"}]}});
        let written = approval(&old, &new);
        assert_eq!(written["spec"]["signerName"], "x");
        assert_eq!(written["status"]["certificate"], "Y2VydA==");
        assert_eq!(written["status"]["conditions"][0]["type"], "Approved");
        assert!(written["status"]["conditions"][0]["lastUpdateTime"].is_string());
        assert!(check_approval(&old, &written).is_empty());
    }

    #[test]
    fn approved_and_denied_exclude_each_other() {
        let both = json!({"status": {"conditions": [
            {"type": "Approved", "status": "True"}, {"type": "Denied", "status": "Maybe"}]}});
        let messages: Vec<String> = check_approval(&json!({}), &both)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            [
                "status.conditions[1].status: Unsupported value: \"Maybe\": supported values: \"False\", \"True\", \"Unknown\"",
                "status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive",
            ]
        );
        let removed = check_approval(&both, &json!({"status": {"conditions": []}}));
        assert_eq!(removed.len(), 2);
    }
}
