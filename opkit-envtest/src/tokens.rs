//! ServiceAccount tokens, as kube-apiserver issues them: signed JWTs
//! (ES256, with the issuer, audiences, expiry and the `kubernetes.io` claims
//! naming the ServiceAccount and any bound object) from
//! `serviceaccounts/<name>/token` (TokenRequest), checked on every request
//! that carries one as a bearer token and by TokenReview. A token stops
//! authenticating once it expires or its ServiceAccount (or bound object) is
//! deleted or recreated.
//!
//! Besides those, the server keeps a table of static tokens for users it was
//! asked to authenticate (kube-apiserver's `--token-auth-file`): opaque,
//! valid for the API's audience only.

use crate::authn::UserInfo;
use crate::error::{ApiError, Error};
use crate::meta::strings;
use crate::store::State;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Mutex;

/// The issuer of tokens, which is also the audience API requests must name.
pub(crate) const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// A TokenRequest's default lifetime, and the shortest and longest allowed.
const DEFAULT_EXPIRATION: i64 = 3600;
const MIN_EXPIRATION: i64 = 600;
const MAX_EXPIRATION: i64 = 1 << 32;

/// Signs and checks the server's ServiceAccount tokens.
pub(crate) struct TokenIssuer {
    key: EcdsaKeyPair,
    key_id: String,
    rng: SystemRandom,
    users: Mutex<HashMap<String, UserInfo>>,
}

fn claim<'a>(claims: &'a Value, pointer: &str) -> &'a str {
    claims
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

impl TokenIssuer {
    /// A fresh signing key.
    pub fn new() -> Result<TokenIssuer, Error> {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng)
            .map_err(|e| Error::Certificate(format!("token signing key: {e}")))?;
        let key = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng)
            .map_err(|e| Error::Certificate(format!("token signing key: {e}")))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        let key_id = URL_SAFE_NO_PAD.encode(digest.as_ref());
        Ok(TokenIssuer {
            key,
            key_id,
            rng,
            users: Mutex::default(),
        })
    }

    /// A new static token authenticating as `user`.
    pub fn user_token(&self, user: UserInfo) -> Result<String, Error> {
        let mut secret = [0u8; 32];
        ring::rand::SecureRandom::fill(&self.rng, &mut secret)
            .map_err(|e| Error::Certificate(format!("token: {e}")))?;
        let token = URL_SAFE_NO_PAD.encode(secret);
        self.users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone(), user);
        Ok(token)
    }

    fn sign(&self, claims: &Value) -> Result<String, ApiError> {
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let input = format!("{}.{}", encode(&header), encode(claims));
        let signature = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map_err(|e| ApiError::internal(format!("signing a token: {e}")))?;
        Ok(format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// The claims of a token this issuer signed; the error says why not.
    fn verify(&self, token: &str) -> Result<Value, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("compact JWS format must have three parts".into());
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| "illegal base64 data in the signature".to_string())?;
        let public = signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            self.key.public_key().as_ref(),
        );
        public
            .verify(format!("{header}.{payload}").as_bytes(), &signature)
            .map_err(|_| "error in cryptographic primitive".to_string())?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| "illegal base64 data in the payload".to_string())?;
        serde_json::from_slice(&payload).map_err(|e| e.to_string())
    }

    /// The user a token names and the audiences (of `audiences`, or the API's when
    /// empty) it is valid for; the error is TokenReview's `status.error`.
    pub fn authenticate(
        &self,
        state: &State,
        token: &str,
        audiences: &[String],
    ) -> Result<(UserInfo, Vec<String>), String> {
        let invalid = |reason: String| format!("[invalid bearer token, {reason}]");
        let static_user = self
            .users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(token)
            .cloned();
        if let Some(user) = static_user {
            // Audience-agnostic, so valid only where the API's audience is asked for.
            if audiences.is_empty() || audiences.iter().any(|a| a == ISSUER) {
                return Ok((user, vec![ISSUER.to_string()]));
            }
            return Err(invalid(format!(
                "token audiences {} is invalid for the target audiences {}",
                go_quoted(&[ISSUER.to_string()]),
                go_quoted(audiences)
            )));
        }
        let claims = self.verify(token).map_err(invalid)?;
        if claim(&claims, "/iss") != ISSUER {
            return Err(invalid("token issuer is not trusted".into()));
        }
        let now = Timestamp::now().as_second();
        let expiry = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        let not_before = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
        if now >= expiry {
            return Err(invalid("service account token has expired".into()));
        }
        if now < not_before {
            return Err(invalid("service account token is not valid yet".into()));
        }
        let token_audiences: Vec<String> = strings(claims.get("aud"));
        let wanted: Vec<String> = if audiences.is_empty() {
            vec![ISSUER.to_string()]
        } else {
            audiences.to_vec()
        };
        let matching: Vec<String> = wanted
            .iter()
            .filter(|a| token_audiences.contains(a))
            .cloned()
            .collect();
        if matching.is_empty() {
            return Err(invalid(format!(
                "token audiences {} is invalid for the target audiences {}",
                go_quoted(&token_audiences),
                go_quoted(&wanted)
            )));
        }
        let namespace = claim(&claims, "/kubernetes.io/namespace");
        let name = claim(&claims, "/kubernetes.io/serviceaccount/name");
        let uid = claim(&claims, "/kubernetes.io/serviceaccount/uid");
        let live_uid = state
            .get("/serviceaccounts", namespace, name)
            .map(|sa| crate::store::meta_str(&sa, "uid").to_string());
        if live_uid.as_deref() != Some(uid) {
            return Err(invalid(format!(
                "service account {namespace}/{name} has been deleted"
            )));
        }
        let mut user = UserInfo::service_account(namespace, name, uid);
        for (kind, storage) in [("pod", "/pods"), ("secret", "/secrets")] {
            let bound_name = claim(&claims, &format!("/kubernetes.io/{kind}/name"));
            if bound_name.is_empty() {
                continue;
            }
            let bound_uid = claim(&claims, &format!("/kubernetes.io/{kind}/uid"));
            let live = state
                .get(storage, namespace, bound_name)
                .map(|o| crate::store::meta_str(&o, "uid").to_string());
            if live.as_deref() != Some(bound_uid) {
                return Err(invalid(format!(
                    "{kind} \"{bound_name}\" is bound to this token and has been deleted"
                )));
            }
            if kind == "pod" {
                user.extra.insert(
                    "authentication.kubernetes.io/pod-name".into(),
                    vec![bound_name.to_string()],
                );
                user.extra.insert(
                    "authentication.kubernetes.io/pod-uid".into(),
                    vec![bound_uid.to_string()],
                );
            }
        }
        let jti = claim(&claims, "/jti");
        if !jti.is_empty() {
            user.extra.insert(
                "authentication.kubernetes.io/credential-id".into(),
                vec![format!("JTI={jti}")],
            );
        }
        Ok((user, matching))
    }

    /// Answers a TokenRequest (`POST serviceaccounts/<name>/token`) for the
    /// ServiceAccount `namespace/name`.
    pub fn request(
        &self,
        state: &State,
        namespace: &str,
        name: &str,
        mut request: Value,
    ) -> Result<Value, ApiError> {
        let invalid = |field: &str, value: Value, detail: &str| {
            ApiError::invalid_kind(
                "TokenRequest.authentication.k8s.io",
                name,
                field,
                &value,
                detail,
            )
        };
        let body_name = request.pointer("/metadata/name").and_then(Value::as_str);
        if let Some(body_name) = body_name.filter(|n| !n.is_empty() && *n != name) {
            return Err(invalid(
                "metadata.name",
                json!(body_name),
                "must match the service account name if specified",
            ));
        }
        let body_namespace = request
            .pointer("/metadata/namespace")
            .and_then(Value::as_str);
        if let Some(ns) = body_namespace.filter(|n| !n.is_empty() && *n != namespace) {
            return Err(invalid(
                "metadata.namespace",
                json!(ns),
                "must match the service account namespace if specified",
            ));
        }
        let expiration = request
            .pointer("/spec/expirationSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_EXPIRATION);
        if expiration < MIN_EXPIRATION {
            return Err(invalid(
                "spec.expirationSeconds",
                json!(expiration),
                "may not specify a duration less than 10 minutes",
            ));
        }
        if expiration > MAX_EXPIRATION {
            return Err(invalid(
                "spec.expirationSeconds",
                json!(expiration),
                "may not specify a duration larger than 2^32 seconds",
            ));
        }
        let Some(account) = state.get("/serviceaccounts", namespace, name) else {
            return Err(ApiError::not_found_resource("serviceaccounts", "", name));
        };
        let mut audiences = strings(request.pointer("/spec/audiences"));
        if audiences.is_empty() {
            audiences.push(ISSUER.to_string());
        }
        let now = Timestamp::now();
        let mut identity = json!({
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": crate::store::meta_str(&account, "uid")},
        });
        if let Some(bound) = request
            .pointer("/spec/boundObjectRef")
            .filter(|b| !b.is_null())
        {
            let kind = bound.get("kind").and_then(Value::as_str).unwrap_or("");
            let (claim_name, storage, resource) = match kind {
                "Pod" => ("pod", "/pods", "pods"),
                "Secret" => ("secret", "/secrets", "secrets"),
                _ => {
                    return Err(invalid(
                        "spec.boundObjectRef.kind",
                        json!(kind),
                        "supported values: \"Pod\", \"Secret\"",
                    ));
                }
            };
            let bound_name = bound.get("name").and_then(Value::as_str).unwrap_or("");
            let Some(object) = state.get(storage, namespace, bound_name) else {
                return Err(ApiError::not_found_resource(resource, "", bound_name));
            };
            let live_uid = crate::store::meta_str(&object, "uid").to_string();
            let wanted_uid = bound.get("uid").and_then(Value::as_str).unwrap_or("");
            if !wanted_uid.is_empty() && wanted_uid != live_uid {
                return Err(ApiError::conflict_message(
                    "",
                    kind,
                    bound_name,
                    &format!(
                        "the UID in the bound object reference ({wanted_uid}) does not match the UID in record. The object might have been deleted and then recreated"
                    ),
                ));
            }
            identity[claim_name] = json!({"name": bound_name, "uid": live_uid});
        }
        let issued = now.as_second();
        let expires = issued + expiration;
        let claims = json!({
            "aud": audiences,
            "exp": expires,
            "iat": issued,
            "iss": ISSUER,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": identity,
            "nbf": issued,
            "sub": crate::authn::service_account_username(namespace, name),
        });
        let token = self.sign(&claims)?;
        let expiry = Timestamp::from_second(expires).unwrap_or(now);
        let spec = request
            .get("spec")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        request["kind"] = json!("TokenRequest");
        request["apiVersion"] = json!("authentication.k8s.io/v1");
        let metadata = request
            .get("metadata")
            .cloned()
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        request["metadata"] = metadata;
        request["metadata"]["name"] = json!(name);
        request["metadata"]["namespace"] = json!(namespace);
        request["metadata"]["creationTimestamp"] = json!(rfc3339(now));
        request["spec"] = spec;
        request["spec"]["audiences"] = json!(audiences);
        request["spec"]["expirationSeconds"] = json!(expiration);
        request["status"] = json!({"token": token, "expirationTimestamp": rfc3339(expiry)});
        Ok(request)
    }

    /// Answers a TokenReview: whether `spec.token` authenticates for `spec.audiences`.
    pub fn review(&self, state: &State, mut review: Value) -> Value {
        let token = review
            .pointer("/spec/token")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let audiences: Vec<String> = strings(review.pointer("/spec/audiences"));
        let status = match self.authenticate(state, &token, &audiences) {
            Ok((user, audiences)) => json!({
                "authenticated": true,
                "user": user.to_json(),
                "audiences": audiences,
            }),
            Err(error) => json!({"user": {}, "error": error}),
        };
        review["status"] = status;
        review
    }
}

/// `["a" "b"]`, as Go's `%q` prints a string slice.
fn go_quoted(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tampered_and_foreign_tokens_do_not_verify() {
        let issuer = TokenIssuer::new().unwrap_or_else(|e| panic!("{e}"));
        let token = issuer
            .sign(&json!({"sub": "x"}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            issuer.verify(&token).map(|c| c["sub"].clone()),
            Ok(json!("x"))
        );
        let other = TokenIssuer::new().unwrap_or_else(|e| panic!("{e}"));
        assert!(other.verify(&token).is_err());
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(r#"{"sub":"admin"}"#);
        parts[1] = &forged;
        assert!(issuer.verify(&parts.join(".")).is_err());
        assert_eq!(
            issuer.verify("abc"),
            Err("compact JWS format must have three parts".to_string())
        );
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quoted(&["api".into(), "b".into()]), r#"["api" "b"]"#);
    }
}
