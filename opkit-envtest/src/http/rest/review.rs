//! The resources that answer a question and store nothing: TokenRequest
//! (`serviceaccounts/<name>/token`), TokenReview, SelfSubjectReview and the
//! access reviews of `authorization.k8s.io`.

use super::{RestRequest, Written};
use crate::authz;
use crate::error::ApiError;
use serde_json::{Value, json};

impl RestRequest {
    /// Answers a review or TokenRequest.
    pub(super) fn answer(&self, bytes: &[u8]) -> Result<Written, ApiError> {
        let info = &self.target.info;
        let mut body = self.parse(bytes)?;
        let state = self.server.store.read();
        let object = if self.target.subresource.as_deref() == Some("token") {
            self.server
                .tokens
                .request(&state, self.namespace(), self.name(), body)?
        } else {
            self.check_type(info, &mut body)?;
            if !body.get("metadata").is_some_and(Value::is_object) {
                body["metadata"] = json!({});
            }
            match info.kind.as_str() {
                "TokenReview" => self.server.tokens.review(&state, body),
                "SelfSubjectReview" => {
                    body["status"] = json!({"userInfo": self.user.to_json()});
                    body
                }
                kind => authz::review(&state, &self.user, kind, self.namespace(), body)?,
            }
        };
        Ok(Written {
            code: 201,
            object,
            warnings: Vec::new(),
        })
    }
}
