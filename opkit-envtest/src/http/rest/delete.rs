//! Deletes: one object or a collection, with preconditions and propagation.

use super::{RestRequest, Selectors, Written, present, present_all};
use crate::crd;
use crate::deletion::{self, Outcome, Preconditions, Propagation};
use crate::error::ApiError;
use crate::http::negotiate::{self, Format, respond};
use crate::store::meta_str;
use axum::body::Body;
use serde_json::{Value, json};

impl RestRequest {
    fn delete_options(&self, bytes: &[u8]) -> Result<(Propagation, Preconditions, bool), ApiError> {
        let body: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            negotiate::parse_body(&negotiate::content_type(&self.headers), bytes)?
        };
        let policy = body
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| self.query.get("propagationPolicy").cloned());
        let orphan = body.get("orphanDependents").and_then(Value::as_bool) == Some(true)
            || self
                .query
                .get("orphanDependents")
                .is_some_and(|v| v == "true");
        let propagation = match policy.as_deref() {
            Some(p) => Propagation::parse(p).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
                ))
            })?,
            None if orphan => Propagation::Orphan,
            None => Propagation::Background,
        };
        let preconditions = Preconditions {
            uid: body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_string),
            resource_version: body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string),
        };
        let dry_run = self.dry_run()
            || body
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|v| v == "All"));
        Ok((propagation, preconditions, dry_run))
    }

    pub(super) fn delete(&self, bytes: &[u8]) -> Result<Written, ApiError> {
        let info = &self.target.info;
        let (propagation, preconditions, dry_run) = self.delete_options(bytes)?;
        let name = self.name().to_string();
        if info.group.is_empty()
            && info.plural == "namespaces"
            && crate::namespaces::PROTECTED.contains(&name.as_str())
        {
            return Err(ApiError::forbidden(
                info,
                &name,
                "this namespace may not be deleted",
            ));
        }
        let storage = self.storage();
        self.server.store.write(|txn| {
            let outcome = deletion::delete(
                txn,
                &storage,
                self.namespace(),
                &name,
                propagation,
                &preconditions,
                dry_run,
            );
            if !dry_run {
                self.after_write(txn, &storage, &name, false);
            }
            match outcome {
                Outcome::NotFound => Err(ApiError::not_found(info, &name)),
                Outcome::Conflict(why) => Err(ApiError::conflict_because(info, &name, &why)),
                Outcome::Deferred(obj) => {
                    if !dry_run && storage == crd::CRD_STORAGE {
                        crd::cleanup(txn, &name);
                    }
                    Ok(Written {
                        code: 202,
                        object: present(info, &obj),
                        warnings: Vec::new(),
                    })
                }
                // Pods answer with the object; other kinds with a Success
                // Status, which tells clients the object is already gone.
                Outcome::Removed(obj) if info.group.is_empty() && info.kind == "Pod" => {
                    Ok(Written {
                        code: 200,
                        object: present(info, &obj),
                        warnings: Vec::new(),
                    })
                }
                Outcome::Removed(obj) => Ok(Written {
                    code: 200,
                    object: json!({
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Success",
                        "details": {
                            "name": name,
                            "group": info.group,
                            "kind": info.plural,
                            "uid": meta_str(&obj, "uid"),
                        },
                    }),
                    warnings: Vec::new(),
                }),
            }
        })
    }

    pub(super) async fn delete_collection(
        &self,
        bytes: &[u8],
        format: Format,
    ) -> Result<http::Response<Body>, ApiError> {
        let info = &self.target.info;
        let (propagation, _, dry_run) = self.delete_options(bytes)?;
        let selectors = Selectors::from_query(&self.query, &self.target.info)?;
        let storage = self.storage();
        let (items, rv) = self.server.store.write(|txn| {
            let keys: Vec<(String, String)> = txn
                .state()
                .list(&storage, self.target.namespace.as_deref(), None)
                .filter(|(_, obj)| selectors.matches_stored(obj))
                .map(|(key, _)| key.clone())
                .collect();
            let mut items = Vec::new();
            for (namespace, name) in keys {
                if storage == "/namespaces" && crate::namespaces::PROTECTED.contains(&name.as_str())
                {
                    continue;
                }
                match deletion::delete(
                    txn,
                    &storage,
                    &namespace,
                    &name,
                    propagation,
                    &Preconditions::default(),
                    dry_run,
                ) {
                    Outcome::Deferred(obj) => {
                        if !dry_run && storage == crd::CRD_STORAGE {
                            crd::cleanup(txn, &name);
                        }
                        items.push(obj);
                    }
                    Outcome::Removed(obj) => items.push(obj),
                    Outcome::NotFound | Outcome::Conflict(_) => {}
                }
            }
            if !dry_run {
                self.after_write(txn, &storage, "", false);
            }
            (items, txn.state().rv())
        });
        let items = present_all(&self.server, info, items).await?;
        let body = json!({
            "kind": info.list_kind(),
            "apiVersion": info.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": items,
        });
        Ok(respond(200, format, &body, &[]))
    }
}
