//! One AdmissionReview v1 in, one out: decoding, the typed call, the JSON patch of a mutation.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

use super::{Admitted, Mutator, Validator, Verdict};

/// The default limit on a request body: an object and its old version of up to 3 MiB each.
pub(crate) const MAX_BODY_BYTES: usize = 8 << 20;

/// Why a body could not be answered with an AdmissionReview (the server returns 400).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReviewError {
    #[error("the body is not an AdmissionReview v1: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("the answer cannot be serialized: {0}")]
    Encode(String),
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("the AdmissionReview's apiVersion is {0:?}, not admission.k8s.io/v1")]
    Version(String),
    #[error("the body is not a ConversionReview: {0}")]
    NotConversionReview(serde_json::Error),
    #[error("the ConversionReview's type is {0}, not apiextensions.k8s.io/v1 ConversionReview")]
    ConversionVersion(String),
    #[error("the ConversionReview has no request")]
    NoConversionRequest,
}

/// A typed webhook behind a untyped interface: the body of an AdmissionReview to the body of
/// the answer.
pub(crate) type Handler =
    Arc<dyn Fn(bytes::Bytes) -> BoxFuture<'static, Result<Vec<u8>, ReviewError>> + Send + Sync>;

fn decode<K: Admitted>(body: &[u8]) -> Result<AdmissionRequest<K>, ReviewError> {
    let review: AdmissionReview<K> = serde_json::from_slice(body)?;
    if review.types.api_version != kube::core::admission::META_API_VERSION_V1 {
        return Err(ReviewError::Version(review.types.api_version));
    }
    review.try_into().map_err(|_| ReviewError::NoRequest)
}

fn encode(request_response: AdmissionResponse, verdict: &Verdict) -> Result<Vec<u8>, ReviewError> {
    let mut response = if verdict.is_allowed() {
        request_response
    } else {
        let mut denied = request_response.deny(verdict.message().unwrap_or_default());
        denied.result.code = verdict.status_code();
        denied.result.reason = reason(verdict.status_code()).to_owned();
        denied
    };
    if !verdict.warnings().is_empty() {
        response.warnings = Some(verdict.warnings().to_vec());
    }
    let patch = response.patch.clone();
    let review: AdmissionReview<DynamicObject> = response.into_review();
    let encode_error = |e: serde_json::Error| ReviewError::Encode(e.to_string());
    let mut value = serde_json::to_value(&review).map_err(encode_error)?;
    // The API's `patch` is bytes, base64 in JSON; kube's Vec<u8> would be an array of numbers.
    if let (Some(patch), Some(slot)) = (patch, value.pointer_mut("/response/patch")) {
        *slot = serde_json::to_value(k8s_openapi::ByteString(patch)).map_err(encode_error)?;
    }
    serde_json::to_vec(&value).map_err(encode_error)
}

fn reason(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        404 => "NotFound",
        409 => "Conflict",
        422 => "Invalid",
        _ => "Forbidden",
    }
}

pub(crate) fn validating<K: Admitted>(validator: impl Validator<K>) -> Handler {
    let validator = Arc::new(validator);
    Arc::new(move |body| {
        let validator = validator.clone();
        async move {
            let request = decode::<K>(&body)?;
            let verdict = validator.validate(&request).await;
            encode(AdmissionResponse::from(&request), &verdict)
        }
        .boxed()
    })
}

pub(crate) fn mutating<K: Admitted>(mutator: impl Mutator<K>) -> Handler {
    let mutator = Arc::new(mutator);
    Arc::new(move |body| {
        let mutator = mutator.clone();
        async move {
            let request = decode::<K>(&body)?;
            let response = AdmissionResponse::from(&request);
            let Some(original) = request.object.clone() else {
                // A delete has no new object to change.
                return encode(response, &Verdict::allow());
            };
            let mut object = original.clone();
            let verdict = mutator.mutate(&request, &mut object).await;
            if !verdict.is_allowed() {
                return encode(response, &verdict);
            }
            let to_value =
                |k: &K| serde_json::to_value(k).map_err(|e| ReviewError::Encode(e.to_string()));
            let patch = json_patch::diff(&to_value(&original)?, &to_value(&object)?);
            let response = if patch.0.is_empty() {
                response
            } else {
                response
                    .with_patch(patch)
                    .map_err(|e| ReviewError::Encode(e.to_string()))?
            };
            encode(response, &verdict)
        }
        .boxed()
    })
}
