//! The conversion webhook: one ConversionReview in, one out, answered by a kind's
//! [`Versions`](crate::versions::Versions); and pointing the kind's CRD at it.

use std::sync::Arc;

use futures::FutureExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use kube::core::{Status, TypeMeta};
use serde::Deserialize;
use serde_json::json;

use super::review::{Handler, ReviewError};
use super::{Endpoint, WebhookError};
use crate::versions::Catalog;

/// The ConversionReview versions the API server may send; the answer has the request's.
const REVIEW_VERSIONS: [&str; 2] = ["apiextensions.k8s.io/v1", "apiextensions.k8s.io/v1beta1"];

/// A kind's conversion webhook: its versions and its handler.
#[derive(Clone)]
pub(crate) struct Conversion {
    pub catalog: Arc<Catalog>,
    pub handler: Handler,
}

impl Conversion {
    pub fn new(catalog: Catalog) -> Self {
        let catalog = Arc::new(catalog);
        let versions = catalog.clone();
        let handler: Handler = Arc::new(move |body| {
            let versions = versions.clone();
            async move { answer(&versions, &body) }.boxed()
        });
        Self { catalog, handler }
    }

    /// Points the CRD's `spec.conversion` at `endpoint`, trusting `ca_bundle`; a merge patch
    /// replacing the whole `clientConfig`, however the CRD was written.
    pub async fn install(
        &self,
        client: &kube::Client,
        endpoint: &Endpoint,
        ca_bundle: Option<&str>,
    ) -> Result<(), WebhookError> {
        let name = self.catalog.crd_name();
        let fail = |source| WebhookError::Install {
            name: name.clone(),
            source,
        };
        let crd = self
            .catalog
            .crd(endpoint, ca_bundle)
            .map_err(|e| WebhookError::Serialize(e.to_string()))?;
        let conversion = serde_json::to_value(&crd.spec.conversion)
            .map_err(|e| WebhookError::Serialize(e.to_string()))?;
        let mut patch = json!({"spec": {"conversion": conversion}});
        // A merge patch merges maps: the other way of reaching a webhook must go explicitly.
        if let Some(config) = patch.pointer_mut("/spec/conversion/webhook/clientConfig")
            && let Some(config) = config.as_object_mut()
        {
            for field in ["url", "service", "caBundle"] {
                config.entry(field).or_insert(serde_json::Value::Null);
            }
        }
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(fail)?;
        Ok(())
    }
}

/// The answer to one ConversionReview body; an error for a body that is not one.
fn answer(catalog: &Catalog, body: &[u8]) -> Result<Vec<u8>, ReviewError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(ReviewError::NotConversionReview)?;
    let types = TypeMeta::deserialize(&value).map_err(ReviewError::NotConversionReview)?;
    if !REVIEW_VERSIONS.contains(&types.api_version.as_str()) || types.kind != "ConversionReview" {
        return Err(ReviewError::ConversionVersion(format!(
            "{} {}",
            types.api_version, types.kind
        )));
    }
    let review: ConversionReview =
        serde_json::from_value(value).map_err(ReviewError::NotConversionReview)?;
    let request =
        ConversionRequest::try_from(review).map_err(|_| ReviewError::NoConversionRequest)?;
    let objects = request.objects.clone();
    let desired = request.desired_api_version.clone();
    let response = ConversionResponse::for_request(request);
    let response = match catalog.convert(objects, &desired) {
        Ok(converted) => response.success(converted),
        Err(error) => {
            tracing::warn!(%error, "conversion refused");
            response.failure(Status::failure(&error.to_string(), "BadRequest").with_code(400))
        }
    };
    serde_json::to_vec(&response.into_review()).map_err(|e| ReviewError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::versions::Versions;
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    #[kube(group = "example.com", version = "v1", kind = "Thing", namespaced)]
    pub struct ThingSpec {
        size: i32,
    }

    fn catalog() -> Catalog {
        Versions::<Thing>::new().catalog().clone()
    }

    fn review(request: serde_json::Value) -> Vec<u8> {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "request": request})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn an_unknown_version_is_a_failed_review_with_the_request_uid() {
        let body =
            review(json!({"uid": "u1", "desiredAPIVersion": "example.com/v3", "objects": []}));
        let answer: serde_json::Value =
            serde_json::from_slice(&answer(&catalog(), &body).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(answer["kind"], "ConversionReview");
        assert_eq!(answer["response"]["uid"], "u1");
        assert_eq!(answer["response"]["result"]["status"], "Failure");
        assert_eq!(
            answer["response"]["result"]["message"],
            "example.com/v3 is not a version of Thing (example.com/v1)"
        );
    }

    #[test]
    fn bodies_of_the_wrong_shape_are_refused() {
        let wrong = |body: &[u8]| answer(&catalog(), body).map_err(|e| e.to_string()).err();
        assert_eq!(
            wrong(br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}"#),
            Some("the ConversionReview's type is admission.k8s.io/v1 AdmissionReview, not apiextensions.k8s.io/v1 ConversionReview".into())
        );
        assert_eq!(
            wrong(br#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"}"#),
            Some("the ConversionReview has no request".into())
        );
        assert!(
            wrong(b"[1, 2]").is_some_and(|e| e.starts_with("the body is not a ConversionReview"))
        );
    }
}
