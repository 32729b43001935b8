//! Content negotiation: request bodies in JSON or YAML, responses in JSON
//! (or YAML when that is all the client accepts), `Status` error bodies.

use crate::error::ApiError;
use crate::go_order::GoOrder;
use axum::body::Body;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::Value;

/// The largest request body the server reads, as on a real server.
pub(crate) const BODY_LIMIT: usize = 3 * 1024 * 1024;

pub(crate) fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub(crate) fn accept(headers: &HeaderMap) -> String {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// Parses a JSON or YAML object body.
pub(crate) fn parse_body(content_type: &str, body: &[u8]) -> Result<Value, ApiError> {
    let value: Value = if content_type == crate::protobuf::MEDIA_TYPE {
        crate::protobuf::decode(body).map_err(|e| {
            ApiError::bad_request(format!("the body of the request could not be decoded: {e}"))
        })?
    } else if content_type.contains("yaml") {
        serde_yaml_ng::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("error converting YAML to JSON: yaml: {e}"))
        })?
    } else if content_type.contains("json") || content_type.is_empty() {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    } else {
        return Err(ApiError::unsupported_media_type(
            content_type,
            &[
                "application/json",
                "application/yaml",
                crate::protobuf::MEDIA_TYPE,
            ],
        ));
    };
    Ok(value)
}

/// Whether the client asks for `meta.k8s.io` `PartialObjectMetadata`
/// (metadata-only gets, lists and watches) before anything else it accepts.
pub(crate) fn wants_metadata(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=PartialObjectMetadata"))
}

/// An object reduced to `PartialObjectMetadata`.
pub(crate) fn partial_metadata(obj: &Value) -> Value {
    serde_json::json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(Value::Null),
    })
}

/// Response formats the client accepts, decided from `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Yaml,
}

/// Picks JSON unless the client accepts only YAML; refuses clients that
/// accept neither (protobuf only).
pub(crate) fn response_format(accept: &str) -> Result<Format, ApiError> {
    if accept.trim().is_empty() {
        return Ok(Format::Json);
    }
    let mut yaml = false;
    for item in accept.split(',') {
        let media = item.split(';').next().unwrap_or("").trim();
        match media {
            "application/json" | "*/*" | "application/*" | "" => return Ok(Format::Json),
            "application/yaml" => yaml = true,
            _ => {}
        }
    }
    if yaml {
        Ok(Format::Yaml)
    } else {
        Err(ApiError::not_acceptable())
    }
}

/// A response with `body` serialized in `format`.
pub(crate) fn respond(
    code: u16,
    format: Format,
    body: &Value,
    warnings: &[String],
) -> http::Response<Body> {
    let body = GoOrder(body);
    let (bytes, ctype) = match format {
        Format::Json => (
            serde_json::to_vec(&body).map_err(|e| e.to_string()),
            "application/json",
        ),
        Format::Yaml => (
            serde_yaml_ng::to_string(&body)
                .map(String::into_bytes)
                .map_err(|e| e.to_string()),
            "application/yaml",
        ),
    };
    match bytes {
        Ok(bytes) => {
            let mut response = http::Response::new(Body::from(bytes));
            *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
            for warning in warnings {
                if let Some(value) = warning_value(warning) {
                    response.headers_mut().append(header::WARNING, value);
                }
            }
            response
        }
        Err(e) => error_response(&ApiError::internal(e)),
    }
}

/// The `Status` response of an error.
pub(crate) fn error_response(error: &ApiError) -> http::Response<Body> {
    let mut response = respond(error.code, Format::Json, &error.to_status(), &[]);
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A JSON response from already serialized bytes.
pub(crate) fn respond_json_bytes(code: u16, bytes: Vec<u8>) -> http::Response<Body> {
    let mut response = http::Response::new(Body::from(bytes));
    *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A `Warning` header value as the API server writes it: `299 - "<text>"`.
fn warning_value(warning: &str) -> Option<HeaderValue> {
    let value = format!("299 - {}", serde_json::Value::String(warning.to_string()));
    HeaderValue::from_str(&value).ok()
}

/// Puts `warning` before the response's other warnings, as a version's deprecation warning
/// comes first on a real server.
pub(crate) fn warn_first(response: &mut http::Response<Body>, warning: &str) {
    let Some(first) = warning_value(warning) else {
        return;
    };
    let headers = response.headers_mut();
    let rest: Vec<HeaderValue> = headers.get_all(header::WARNING).iter().cloned().collect();
    headers.remove(header::WARNING);
    headers.append(header::WARNING, first);
    for value in rest {
        headers.append(header::WARNING, value);
    }
}

/// A JSON response with an explicit content type (aggregated discovery).
pub(crate) fn respond_typed(content_type: &'static str, body: &Value) -> http::Response<Body> {
    let mut response = respond(200, Format::Json, body, &[]);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
