//! The {= kind =} validating admission webhook: the API server asks it before it stores a
//! {= kind =}, and refuses the write when it says no.

use opkit::webhook::{AdmissionRequest, Validator, Verdict};

use super::{= kind =};

/// Refuses {= kind =}s the operator should not run.
pub struct {= kind =}Validator;

impl Validator<{= kind =}> for {= kind =}Validator {
    async fn validate(&self, request: &AdmissionRequest<{= kind =}>) -> Verdict {
        let Some({= var =}) = &request.object else {
            return Verdict::allow();
        };
{% if "image" in fields %}
        // A tag or digest, so every pod runs the same code, even after a restart.
        let image = &{= var =}.spec.image;
        let last = image.rsplit('/').next().unwrap_or(image);
        let pinned =
            last.contains('@') || last.split_once(':').is_some_and(|(_, tag)| tag != "latest");
        if !pinned {
            return Verdict::deny(format!("spec.image: {image} names no tag or digest"));
        }
{% elif "message" in fields %}
        if {= var =}.spec.message.trim().is_empty() {
            return Verdict::deny("spec.message: must not be empty");
        }
{% else %}
        // Its objects are named after it, and a Service's name is at most 63 characters.
        let name = {= var =}.metadata.name.as_deref().unwrap_or_default();
        if name.len() > 63 {
            return Verdict::deny(format!("metadata.name: {name} is longer than 63 characters"));
        }
{% endif %}
        Verdict::allow()
    }
}
