//! CEL at admission: the expressions of webhook `matchConditions` and of
//! ValidatingAdmissionPolicies, over the variables kube-apiserver gives
//! them (`object`, `oldObject`, `request`, `params`, `namespaceObject`,
//! `variables`), compiled once per expression and evaluated within the
//! server's cost budgets.

use crate::cel::{self, Bindings, Decl, EvalError, Kind, PER_CALL_LIMIT};
use crate::schema::{Bad, FieldError};
use kube::core::cel::cel::Value as CelValue;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// What `matchConditions` may cost together on one request.
pub(crate) const MATCH_CONDITIONS_BUDGET: u64 = 2_500_000;
/// kube-apiserver's error once a budget is spent.
pub(crate) const OUT_OF_BUDGET: &str =
    "validation failed due to running out of cost budget, no further validation rules will be run";

/// Which variables an expression may use.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Scope {
    /// A policy's expressions also see `params`, `namespaceObject` and `variables`.
    pub(crate) policy: bool,
    /// The policy's variables, in order, by name.
    pub(crate) variables: Vec<String>,
}

impl Scope {
    /// The webhooks' scope.
    pub(crate) fn webhook() -> Self {
        Self::default()
    }

    fn declarations(&self) -> Vec<(&str, Decl)> {
        let mut vars = vec![
            ("object", Decl::dyn_()),
            ("oldObject", Decl::dyn_()),
            ("request", Decl::dyn_()),
            ("authorizer", Decl::dyn_()),
        ];
        if self.policy {
            vars.push(("params", Decl::dyn_()));
            vars.push(("namespaceObject", Decl::dyn_()));
            let fields: BTreeMap<String, Decl> = self
                .variables
                .iter()
                .map(|name| (name.clone(), Decl::dyn_()))
                .collect();
            vars.push(("variables", Decl::new(Kind::Object(Arc::new(fields)))));
        }
        vars
    }
}

/// An expression as compiled: the program, or the compile error's detail.
pub(crate) type Expression = Arc<Result<cel::Compiled, String>>;

/// Compiles `source` for `scope`, once: configurations are read on every
/// request, their expressions compiled the first time they are met.
pub(crate) fn compile(source: &str, scope: &Scope) -> Expression {
    static CACHE: Mutex<Option<HashMap<(String, Scope), Expression>>> = Mutex::new(None);
    let key = (source.to_string(), scope.clone());
    if let Some(found) = CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .get(&key)
    {
        return found.clone();
    }
    let compiled = Arc::new(cel::compile(source, &scope.declarations()));
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(HashMap::new);
    // Bounded: configurations written with ever-new expressions must not grow it forever.
    if cache.len() >= 4096 {
        cache.clear();
    }
    cache.insert(key, compiled.clone());
    compiled
}

/// Checks an expression a configuration declares, as the API server
/// validates it on write: `path` is its field, `returns` the type it must
/// yield (`bool`, `string`), if any.
pub(crate) fn check(
    source: &str,
    scope: &Scope,
    path: &str,
    returns: Option<Kind>,
) -> Option<FieldError> {
    if source.trim().is_empty() {
        return Some(FieldError::required(path, "expression is not specified"));
    }
    let detail = match &*compile(source, scope) {
        Err(detail) => detail.clone(),
        Ok(compiled) => match returns {
            Some(kind)
                if !matches!(compiled.result.kind, Kind::Dyn) && compiled.result.kind != kind =>
            {
                format!("must evaluate to {}", Decl::new(kind).name())
            }
            _ => return None,
        },
    };
    Some(FieldError::invalid(path, Bad::Str(source), &detail))
}

/// The values an admission expression sees.
pub(crate) struct Inputs<'a> {
    pub(crate) object: Option<&'a Value>,
    pub(crate) old_object: Option<&'a Value>,
    /// The AdmissionRequest, without its objects.
    pub(crate) request: &'a Value,
    pub(crate) params: Option<&'a Value>,
    pub(crate) namespace: Option<&'a Value>,
}

impl Inputs<'_> {
    /// The variables bound, `variables` holding what the policy computed.
    pub(crate) fn bindings(&self, variables: Option<CelValue>) -> Bindings {
        let value = |v: Option<&Value>| v.map_or(CelValue::Null, cel::values::from_json);
        let mut bindings = Bindings::new()
            .bind("object", value(self.object))
            .bind("oldObject", value(self.old_object))
            .bind("request", cel::values::from_json(self.request))
            .bind("params", value(self.params))
            .bind("namespaceObject", value(self.namespace));
        if let Some(variables) = variables {
            bindings = bindings.bind("variables", variables);
        }
        bindings
    }
}

/// A budget expressions are evaluated within.
pub(crate) struct Budget(pub(crate) u64);

impl Budget {
    /// Evaluates `expression`: its value, or the error the API server reports
    /// (`expression 'x' resulted in error: no such key: y`). `Err(None)` when
    /// the budget is spent, after which nothing more may run.
    pub(crate) fn eval(
        &mut self,
        expression: &Expression,
        source: &str,
        bindings: &Bindings,
    ) -> Result<CelValue, Option<String>> {
        let compiled = match &**expression {
            Ok(compiled) => compiled,
            Err(detail) => return Err(Some(format!("compilation error: {detail}"))),
        };
        let (result, cost) = compiled.program.eval(bindings, PER_CALL_LIMIT.min(self.0));
        match result {
            Err(EvalError::CostLimit) if cost <= PER_CALL_LIMIT => Err(None),
            Err(error) => {
                self.0 = self.0.saturating_sub(cost.min(PER_CALL_LIMIT));
                Err(Some(format!(
                    "expression '{source}' resulted in error: {error}"
                )))
            }
            Ok(value) => {
                self.0 -= cost;
                Ok(value)
            }
        }
    }
}

/// What a list of `matchConditions` decided.
#[derive(Debug, PartialEq)]
pub(crate) enum Matched {
    /// Every condition is true.
    Yes,
    /// This condition is false.
    No(String),
    /// None is false, but some failed: the failure policy decides.
    Error(String),
}

/// Evaluates `matchConditions` (`[{name, expression}]`) as kube-apiserver:
/// a false condition wins over errors, errors over true ones.
pub(crate) fn match_conditions(
    conditions: &[Value],
    scope: &Scope,
    bindings: &Bindings,
) -> Matched {
    let mut budget = Budget(MATCH_CONDITIONS_BUDGET);
    let mut errors = Vec::new();
    for condition in conditions {
        let name = condition.get("name").and_then(Value::as_str).unwrap_or("");
        let source = condition
            .get("expression")
            .and_then(Value::as_str)
            .unwrap_or("");
        match budget.eval(&compile(source, scope), source, bindings) {
            Ok(CelValue::Bool(true)) => {}
            Ok(CelValue::Bool(false)) => return Matched::No(name.to_string()),
            Ok(_) => errors.push(format!(
                "expression '{source}' resulted in error: no such overload"
            )),
            Err(Some(error)) => errors.push(error),
            Err(None) => return Matched::Error(OUT_OF_BUDGET.to_string()),
        }
    }
    match errors.len() {
        0 => Matched::Yes,
        1 => Matched::Error(errors.remove(0)),
        _ => Matched::Error(format!("[{}]", errors.join(", "))),
    }
}

/// Checks the `matchConditions` of a configuration at `path`.
pub(crate) fn check_match_conditions(
    conditions: Option<&Value>,
    scope: &Scope,
    path: &str,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let Some(list) = conditions.and_then(Value::as_array) else {
        return errors;
    };
    if list.len() > 64 {
        errors.push(FieldError::too_many(path, list.len(), 64));
    }
    let mut seen = Vec::new();
    for (i, condition) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let name = condition.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            errors.push(FieldError::required(&format!("{at}.name"), ""));
        } else if seen.contains(&name) {
            errors.push(FieldError::duplicate(
                &format!("{at}.name"),
                &Value::String(name.to_string()),
            ));
        }
        seen.push(name);
        let source = condition
            .get("expression")
            .and_then(Value::as_str)
            .unwrap_or("");
        errors.extend(check(
            source,
            scope,
            &format!("{at}.expression"),
            Some(Kind::Bool),
        ));
    }
    errors
}

/// Checks the CEL a webhook configuration declares: its webhooks' `matchConditions`.
pub(crate) fn check_webhooks(configuration: &Value) -> Vec<FieldError> {
    let webhooks = configuration.get("webhooks").and_then(Value::as_array);
    webhooks
        .into_iter()
        .flatten()
        .enumerate()
        .flat_map(|(i, webhook)| {
            let path = format!("webhooks[{i}].matchConditions");
            check_match_conditions(webhook.get("matchConditions"), &Scope::webhook(), &path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bindings<'a>(object: &'a Value, request: &'a Value) -> Bindings {
        Inputs {
            object: Some(object),
            old_object: None,
            request,
            params: None,
            namespace: None,
        }
        .bindings(None)
    }

    fn condition(name: &str, expression: &str) -> Value {
        json!({"name": name, "expression": expression})
    }

    #[test]
    fn a_false_condition_wins_over_errors() {
        let object = json!({"metadata": {"name": "a", "labels": {"tier": "web"}}});
        let request = json!({"operation": "CREATE"});
        let b = bindings(&object, &request);
        let scope = Scope::webhook();
        let yes = [
            condition("web", "object.metadata.labels.tier == 'web'"),
            condition("create", "request.operation == 'CREATE'"),
        ];
        assert_eq!(match_conditions(&yes, &scope, &b), Matched::Yes);
        let no = [
            condition("broken", "object.spec.x == 1"),
            condition("not-db", "object.metadata.labels.tier == 'db'"),
        ];
        assert_eq!(
            match_conditions(&no, &scope, &b),
            Matched::No("not-db".into())
        );
        let broken = [condition("broken", "object.spec.x == 1")];
        assert_eq!(
            match_conditions(&broken, &scope, &b),
            Matched::Error(
                "expression 'object.spec.x == 1' resulted in error: no such key: spec".into()
            )
        );
    }

    #[test]
    fn configurations_are_checked_as_the_server_does() {
        let conditions = json!([
            {"name": "ok", "expression": "object != null"},
            {"name": "ok", "expression": "params.x == 1"},
            {"name": "", "expression": "'text'"},
        ]);
        let errors: Vec<String> = check_match_conditions(
            Some(&conditions),
            &Scope::webhook(),
            "webhooks[0].matchConditions",
        )
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert_eq!(
            errors[0],
            "webhooks[0].matchConditions[1].name: Duplicate value: \"ok\""
        );
        assert!(errors[1].starts_with("webhooks[0].matchConditions[1].expression: Invalid value: \"params.x == 1\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'params' (in container '')"), "{}", errors[1]);
        assert_eq!(
            errors[2],
            "webhooks[0].matchConditions[2].name: Required value"
        );
        assert_eq!(
            errors[3],
            "webhooks[0].matchConditions[2].expression: Invalid value: \"'text'\": must evaluate to bool"
        );
    }
}
