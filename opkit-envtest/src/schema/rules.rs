//! CEL validation rules (`x-kubernetes-validations`): compiled and costed
//! when a CRD is written, evaluated on every write of its objects, with
//! kube-apiserver's wording, cost limits, transition rules and ratcheting.

use super::correlation::{Correlation, map_list_item};
use super::field_error::{Bad, FieldError};
use super::go_format::go_quote;
use crate::cel::types::MAX_REQUEST_BYTES;
use crate::cel::{self, Bindings, Decl, EvalError, PER_CALL_LIMIT, Program, RUNTIME_BUDGET};
use kube::core::cel::cel::Value as CelValue;
use kube::core::cel::cel::objects::OptionalValue;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// The most one rule may cost, by the estimate made when the CRD is written
/// (`StaticEstimatedCostLimit`), counting every place it applies.
const STATIC_COST_LIMIT: u64 = 10_000_000;
/// The most all rules of a schema may cost together (`StaticEstimatedCRDCostLimit`).
const STATIC_SCHEMA_COST_LIMIT: u64 = 100_000_000;
/// The longest message a `messageExpression` may produce.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;
const REASONS: [&str; 4] = [
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];
const SKIPPED: &str = "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation";

/// The compiled rules of one CRD version's schema.
pub(crate) struct Rules {
    root: Node,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Rules")
    }
}

/// Rules compiled apart are told apart: the same schema compiles the same.
impl PartialEq for Rules {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// A schema node with rules at or below it.
struct Node {
    /// The node's schema, which types the value rules see.
    schema: Value,
    resource_root: bool,
    rules: Vec<Rule>,
    properties: Vec<(String, Node)>,
    items: Option<Box<Node>>,
    additional: Option<Box<Node>>,
}

/// One `x-kubernetes-validations` entry.
#[derive(Default)]
struct Spec {
    rule: String,
    message: String,
    message_expression: String,
    reason: Option<String>,
    field_path: String,
    optional_old_self: Option<bool>,
}

impl Spec {
    fn parse(raw: &Value) -> Spec {
        let text = |key: &str| {
            raw.get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Spec {
            rule: text("rule"),
            message: text("message"),
            message_expression: text("messageExpression"),
            reason: raw
                .get("reason")
                .and_then(Value::as_str)
                .map(str::to_string),
            field_path: text("fieldPath"),
            optional_old_self: raw.get("optionalOldSelf").and_then(Value::as_bool),
        }
    }

    /// The rule as Go's `%#v` prints kube-apiserver's `ValidationRule`.
    fn go_value(&self) -> String {
        let pointer = |set: bool, ty: &str| {
            if set {
                format!("(*{ty})(0xc000a1e0f0)")
            } else {
                format!("(*{ty})(nil)")
            }
        };
        format!(
            "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{}, FieldPath:{}, OptionalOldSelf:{}}}",
            go_quote(&self.rule),
            go_quote(&self.message),
            go_quote(&self.message_expression),
            pointer(self.reason.is_some(), "apiextensions.FieldValueErrorReason"),
            go_quote(&self.field_path),
            pointer(self.optional_old_self.is_some(), "bool"),
        )
    }

    /// How errors name the rule: its message, or its expression.
    fn error_string(&self) -> &str {
        let message = self.message.trim();
        if message.is_empty() {
            self.rule.trim()
        } else {
            message
        }
    }
}

struct Rule {
    spec: Spec,
    program: Program,
    message: Option<Program>,
    uses_old_self: bool,
    /// `fieldPath`, as the error path below the node (`spec.replicas`, `labels[a]`).
    field_path: Option<String>,
}

/// What compiling a schema's rules found.
pub(crate) struct Compiled {
    /// The rules, when there are any and all compiled.
    pub(crate) rules: Option<Rules>,
    /// Why the CRD is refused, relative to the schema root.
    pub(crate) errors: Vec<FieldError>,
}

/// Compiles the rules of a CRD version's `openAPIV3Schema`. `root` is the
/// schema's path in the CRD, which some messages quote.
pub(crate) fn compile(schema: &Value, root: &str) -> Compiled {
    let mut walk = Walk {
        root: root.to_string(),
        errors: Vec::new(),
        costs: Vec::new(),
    };
    let node = walk.node(schema, "", true, Some(1), None);
    let total = walk
        .costs
        .iter()
        .fold(0u64, |sum, (_, c)| sum.saturating_add(*c));
    if total > STATIC_SCHEMA_COST_LIMIT {
        let mut expensive: Vec<&(String, u64)> = walk
            .costs
            .iter()
            .filter(|(_, c)| *c >= STATIC_COST_LIMIT / 100)
            .collect();
        expensive.sort_by_key(|(_, cost)| std::cmp::Reverse(*cost));
        let mut errors: Vec<FieldError> = expensive
            .into_iter()
            .take(4)
            .map(|(path, _)| {
                FieldError::forbidden(
                    path,
                    "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema",
                )
            })
            .collect();
        errors.push(FieldError::forbidden(
            "",
            &cost_message(
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                total,
                STATIC_SCHEMA_COST_LIMIT,
            ),
        ));
        walk.errors.extend(errors);
    }
    let rules = node
        .filter(|_| walk.errors.is_empty())
        .map(|root| Rules { root });
    Compiled {
        rules,
        errors: walk.errors,
    }
}

/// kube-apiserver's message for an estimate over its limit.
fn cost_message(what: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
    let factor = if factor > 100.0 {
        "more than 100x".to_string()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{what} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}

fn join(path: &str, child: &str) -> String {
    if path.is_empty() {
        child.to_string()
    } else {
        format!("{path}.{child}")
    }
}

struct Walk {
    root: String,
    errors: Vec<FieldError>,
    /// Every expression's estimated cost, by the path of its field.
    costs: Vec<(String, u64)>,
}

impl Walk {
    /// Compiles the rules at and below `schema`. `cardinality` is how many
    /// times the node can occur (`None` when a list or map above it is
    /// unbounded); `uncorrelatable` the list above it whose items do not
    /// correlate with old ones, where transition rules are refused.
    fn node(
        &mut self,
        schema: &Value,
        path: &str,
        resource_root: bool,
        cardinality: Option<u64>,
        uncorrelatable: Option<&str>,
    ) -> Option<Node> {
        let s = schema.as_object()?;
        let flag = |key: &str| s.get(key).and_then(Value::as_bool) == Some(true);
        let mut node = Node {
            schema: schema.clone(),
            resource_root,
            rules: Vec::new(),
            properties: Vec::new(),
            items: None,
            additional: None,
        };
        if let Some(rules) = s.get("x-kubernetes-validations").and_then(Value::as_array) {
            let decl = Decl::from_schema(schema, resource_root);
            let cardinality = cardinality.unwrap_or_else(|| unbounded_cardinality(schema));
            for (i, raw) in rules.iter().enumerate() {
                let at = join(path, &format!("x-kubernetes-validations[{i}]"));
                if let Some(rule) = self.rule(schema, raw, &at, &decl, cardinality, uncorrelatable)
                {
                    node.rules.push(rule);
                }
            }
        }
        if let Some(properties) = s.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                let at = join(path, &format!("properties[{name}]"));
                let embedded = property
                    .get("x-kubernetes-embedded-resource")
                    .and_then(Value::as_bool)
                    == Some(true);
                if let Some(child) = self.node(property, &at, embedded, cardinality, uncorrelatable)
                {
                    node.properties.push((name.clone(), child));
                }
            }
        }
        if let Some(items) = s.get("items") {
            let at = join(path, "items");
            let bound = s.get("maxItems").and_then(Value::as_u64);
            let list_path = join(&self.root, path);
            let item_uncorrelatable =
                uncorrelatable.or((s.get("x-kubernetes-list-type").and_then(Value::as_str)
                    != Some("map"))
                .then_some(list_path.as_str()));
            let embedded = flag("x-kubernetes-embedded-resource")
                || items
                    .get("x-kubernetes-embedded-resource")
                    .and_then(Value::as_bool)
                    == Some(true);
            let times = cardinality.zip(bound).map(|(c, b)| c.saturating_mul(b));
            node.items = self
                .node(
                    items,
                    &at,
                    embedded && items.is_object(),
                    times,
                    item_uncorrelatable,
                )
                .map(Box::new);
        }
        if let Some(additional) = s.get("additionalProperties").filter(|a| a.is_object()) {
            let at = join(path, "additionalProperties");
            let bound = s.get("maxProperties").and_then(Value::as_u64);
            let embedded = additional
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                == Some(true);
            let times = cardinality.zip(bound).map(|(c, b)| c.saturating_mul(b));
            node.additional = self
                .node(additional, &at, embedded, times, uncorrelatable)
                .map(Box::new);
        }
        let empty = node.rules.is_empty()
            && node.properties.is_empty()
            && node.items.is_none()
            && node.additional.is_none();
        (!empty).then_some(node)
    }

    /// Checks and compiles one rule, recording why it is refused.
    fn rule(
        &mut self,
        schema: &Value,
        raw: &Value,
        at: &str,
        decl: &Decl,
        cardinality: u64,
        uncorrelatable: Option<&str>,
    ) -> Option<Rule> {
        let spec = Spec::parse(raw);
        let before = self.errors.len();
        let field = |name: &str| join(at, name);
        let (rule, message) = (spec.rule.trim(), spec.message.trim());
        if rule.is_empty() {
            self.errors.push(FieldError::required(
                &field("rule"),
                "rule is not specified",
            ));
        } else if !spec.message.is_empty() && message.is_empty() {
            self.errors.push(FieldError::invalid(
                &field("message"),
                Bad::Str(&spec.message),
                "message must be non-empty if specified",
            ));
        } else if has_newlines(message) {
            self.errors.push(FieldError::invalid(
                &field("message"),
                Bad::Str(&spec.message),
                "message must not contain line breaks",
            ));
        } else if has_newlines(rule) && message.is_empty() {
            self.errors.push(FieldError::required(
                &field("message"),
                "message must be specified if rule contains line breaks",
            ));
        }
        if !spec.message_expression.is_empty() && spec.message_expression.trim().is_empty() {
            self.errors.push(FieldError::required(
                &field("messageExpression"),
                "messageExpression must be non-empty if specified",
            ));
        }
        if let Some(reason) = &spec.reason
            && !REASONS.contains(&reason.as_str())
        {
            let supported: Vec<String> = REASONS.iter().map(|r| r.to_string()).collect();
            self.errors.push(FieldError::not_supported(
                &field("reason"),
                &Value::String(reason.clone()),
                &supported,
            ));
        }
        let mut field_path = None;
        if !spec.field_path.is_empty() {
            let bad = |detail: &str| {
                FieldError::invalid(&field("fieldPath"), Bad::Str(&spec.field_path), detail)
            };
            if spec.field_path.trim().is_empty() {
                self.errors
                    .push(bad("fieldPath must be non-empty if specified"));
            } else if has_newlines(&spec.field_path) {
                self.errors
                    .push(bad("fieldPath must not contain line breaks"));
            } else {
                match normalize_field_path(&spec.field_path, schema) {
                    Some(normalized) => field_path = Some(normalized),
                    None => self.errors.push(bad("fieldPath must be a valid path")),
                }
            }
        }
        if self.errors.len() > before || rule.is_empty() {
            return None;
        }
        let old_self = match spec.optional_old_self {
            Some(true) => Decl::new(cel::Kind::Optional(Arc::new(decl.clone()))),
            _ => decl.clone(),
        };
        let vars = [("self", decl.clone()), ("oldSelf", old_self)];
        let compiled = cel::compile(&spec.rule, &vars);
        let cost = compiled
            .as_ref()
            .map_or(0, |c| c.cost)
            .saturating_mul(cardinality);
        if cost > STATIC_COST_LIMIT {
            self.errors.push(FieldError::forbidden(
                &field("rule"),
                &cost_message("estimated rule cost", cost, STATIC_COST_LIMIT),
            ));
        }
        self.costs.push((field("rule"), cost));
        let compiled = match compiled {
            Ok(c) if !matches!(c.result.kind, cel::Kind::Bool | cel::Kind::Dyn) => {
                Err("cel expression must evaluate to a bool".to_string())
            }
            other => other,
        };
        let compiled = match compiled {
            Ok(compiled) => Some(compiled),
            Err(detail) => {
                self.errors.push(FieldError::invalid(
                    &field("rule"),
                    Bad::Raw(&spec.go_value()),
                    &detail,
                ));
                None
            }
        };
        let mut message_program = None;
        if !spec.message_expression.trim().is_empty() {
            match cel::compile(&spec.message_expression, &vars) {
                Err(detail) => self.errors.push(FieldError::invalid(
                    &field("messageExpression"),
                    Bad::Raw(&spec.go_value()),
                    &detail.replacen(
                        "compilation failed",
                        "messageExpression compilation failed",
                        1,
                    ),
                )),
                Ok(c) if !matches!(c.result.kind, cel::Kind::String | cel::Kind::Dyn) => {
                    self.errors.push(FieldError::invalid(
                        &field("messageExpression"),
                        Bad::Raw(&spec.go_value()),
                        "messageExpression must evaluate to a string",
                    ));
                }
                Ok(c) => {
                    let cost = c.cost.saturating_mul(cardinality);
                    if cost > STATIC_COST_LIMIT {
                        self.errors.push(FieldError::forbidden(
                            &field("messageExpression"),
                            &cost_message(
                                "estimated messageExpression cost",
                                cost,
                                STATIC_COST_LIMIT,
                            ),
                        ));
                    }
                    self.costs.push((field("messageExpression"), cost));
                    message_program = Some(c.program);
                }
            }
        }
        let compiled = compiled?;
        let uses_old_self = compiled.program.uses("oldSelf");
        if uses_old_self {
            if let Some(list) = uncorrelatable {
                self.errors.push(FieldError::invalid(
                    &field("rule"),
                    Bad::Str(&spec.rule),
                    &format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {list}"),
                ));
            }
        } else if let Some(optional) = spec.optional_old_self {
            self.errors.push(FieldError::invalid(
                &field("optionalOldSelf"),
                Bad::Raw(&optional.to_string()),
                "may not be set if oldSelf is not used in rule",
            ));
        }
        Some(Rule {
            spec,
            program: compiled.program,
            message: message_program,
            uses_old_self,
            field_path,
        })
    }
}

fn has_newlines(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

/// How many times a node under an unbounded list or map can occur: as many
/// of its smallest form as fit in a request.
fn unbounded_cardinality(schema: &Value) -> u64 {
    let min = match schema.get("type").and_then(Value::as_str) {
        Some("boolean") => 4,
        Some("integer" | "number") => 1,
        _ => 2,
    };
    MAX_REQUEST_BYTES / (min + 1)
}

/// A rule's `fieldPath` (`.spec.replicas`, `.labels['a.b']`) as the error
/// path it names below the node, or `None` when the schema has no such field.
fn normalize_field_path(path: &str, schema: &Value) -> Option<String> {
    let mut out = String::new();
    let mut node = schema;
    let mut rest = path;
    while !rest.is_empty() {
        let name;
        if let Some(after) = rest.strip_prefix("['") {
            let end = after.find("']")?;
            name = after[..end].replace("\\'", "'").replace("\\\\", "\\");
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            name = after[..end].to_string();
            if name.is_empty() {
                return None;
            }
            rest = &after[end..];
        } else {
            return None;
        }
        if let Some(property) = node.get("properties").and_then(|p| p.get(&name)) {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&name);
            node = property;
        } else if let Some(additional) = node.get("additionalProperties").filter(|a| a.is_object())
        {
            out.push_str(&format!("[{name}]"));
            node = additional;
        } else {
            return None;
        }
    }
    Some(out)
}

/// What the rules said about a write.
#[derive(Debug, Default)]
pub(crate) struct Verdict {
    /// Rules that failed.
    pub(crate) errors: Vec<FieldError>,
    /// Failures ratcheted on an unchanged value, which the server sends as warnings.
    pub(crate) warnings: Vec<String>,
}

/// The error kube-apiserver adds instead of running rules over an object
/// whose schema errors (types, required fields, sizes) make them unsafe.
pub(crate) fn skipped() -> FieldError {
    FieldError::invalid("<nil>", Bad::Str("null"), SKIPPED)
}

/// The error a runtime failure of a rule at `path` reports.
fn invalid(path: &str, node: &Node, detail: &str) -> FieldError {
    let ty = node
        .schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("");
    FieldError::invalid(display(path), Bad::Str(ty), detail)
}

/// Field paths as Go prints them: the root is `<nil>`.
fn display(path: &str) -> &str {
    if path.is_empty() { "<nil>" } else { path }
}

struct Run {
    budget: u64,
    stopped: bool,
    verdict: Verdict,
}

impl Rules {
    /// Evaluates the rules over `object`, a create (`old` is `None`) or an
    /// update; the object is already defaulted and free of blocking errors.
    pub(crate) fn validate(&self, object: &Value, old: Option<&Value>) -> Verdict {
        let mut run = Run {
            budget: RUNTIME_BUDGET,
            stopped: false,
            verdict: Verdict::default(),
        };
        let correlation = Correlation::root(old, object);
        run.node(&self.root, object, old, correlation, "");
        run.verdict
    }
}

impl Run {
    fn node(
        &mut self,
        node: &Node,
        value: &Value,
        old: Option<&Value>,
        correlation: Correlation<'_>,
        path: &str,
    ) {
        if value.is_null() || self.stopped {
            return;
        }
        if !node.rules.is_empty() {
            self.rules(node, value, old, correlation, path);
        }
        match value {
            Value::Object(fields) => {
                for (name, child) in &node.properties {
                    let Some(v) = fields.get(name) else { continue };
                    let child_correlation =
                        if path.is_empty() && (name == "apiVersion" || name == "kind") {
                            Correlation::none()
                        } else {
                            correlation.key(name, v)
                        };
                    let child_old = old.and_then(|o| o.get(name));
                    self.node(child, v, child_old, child_correlation, &join(path, name));
                }
                if let Some(additional) = &node.additional {
                    for (key, v) in fields {
                        let child_old = old.and_then(|o| o.get(key));
                        self.node(
                            additional,
                            v,
                            child_old,
                            correlation.key(key, v),
                            &format!("{path}[{key}]"),
                        );
                    }
                }
            }
            Value::Array(items) => {
                let Some(item_node) = &node.items else { return };
                let Some(list) = node.schema.as_object() else {
                    return;
                };
                let is_map_list =
                    list.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map");
                let old_items = old.and_then(Value::as_array);
                for (i, item) in items.iter().enumerate() {
                    let item_old = old_items
                        .filter(|_| is_map_list)
                        .and_then(|old| map_list_item(list, old, item));
                    let item_correlation = correlation.index(list, items, i);
                    self.node(
                        item_node,
                        item,
                        item_old,
                        item_correlation,
                        &format!("{path}[{i}]"),
                    );
                }
            }
            _ => {}
        }
    }

    fn rules(
        &mut self,
        node: &Node,
        value: &Value,
        old: Option<&Value>,
        correlation: Correlation<'_>,
        path: &str,
    ) {
        let this = cel::values::from_schema(value, &node.schema, node.resource_root);
        let old_value = old.map(|o| cel::values::from_schema(o, &node.schema, node.resource_root));
        // Declared bounds hold on creates: every value was validated against them.
        let bound = |b: Bindings| if old.is_none() { b.within_bounds() } else { b };
        let mut plain = None;
        let mut with_old = None;
        let mut optional_old = None;
        for rule in &node.rules {
            let optional = rule.spec.optional_old_self == Some(true);
            if rule.uses_old_self && old.is_none() && !optional {
                continue;
            }
            let bindings = if optional {
                optional_old.get_or_insert_with(|| {
                    let old = match &old_value {
                        Some(o) => OptionalValue::of(o.clone()),
                        None => OptionalValue::none(),
                    };
                    bound(Bindings::new().bind("self", this.clone()))
                        .bind("oldSelf", CelValue::Opaque(Arc::new(old)))
                })
            } else if let (true, Some(o)) = (rule.uses_old_self, &old_value) {
                with_old.get_or_insert_with(|| {
                    Bindings::new()
                        .bind("self", this.clone())
                        .bind("oldSelf", o.clone())
                })
            } else {
                plain.get_or_insert_with(|| bound(Bindings::new().bind("self", this.clone())))
            };
            if !self.rule(node, rule, bindings, correlation, path) {
                self.stopped = true;
                return;
            }
        }
    }

    /// Evaluates one rule; false when no further rule may run.
    fn rule(
        &mut self,
        node: &Node,
        rule: &Rule,
        bindings: &Bindings,
        correlation: Correlation<'_>,
        path: &str,
    ) -> bool {
        let (result, cost) = rule.program.eval(bindings, PER_CALL_LIMIT.min(self.budget));
        let errors = &mut self.verdict.errors;
        match result {
            Err(EvalError::CostLimit) if cost > PER_CALL_LIMIT => {
                errors.push(invalid(
                    path,
                    node,
                    &format!(
                        "'{}': no further validation rules will be run due to call cost exceeds limit for rule: {}",
                        cel::COST_LIMIT_EXCEEDED,
                        rule.spec.error_string()
                    ),
                ));
                return false;
            }
            Err(EvalError::CostLimit) => {
                errors.push(invalid(
                    path,
                    node,
                    "validation failed due to running out of cost budget, no further validation rules will be run",
                ));
                return false;
            }
            Err(EvalError::Failed(message)) => {
                let detail = if message.starts_with("no such overload") {
                    format!(
                        "'{message}': call arguments did not match a supported operator, function or macro signature for rule: {}",
                        rule.spec.error_string()
                    )
                } else {
                    format!("{message} evaluating rule: {}", rule.spec.error_string())
                };
                errors.push(invalid(path, node, &detail));
                self.budget -= cost;
                return true;
            }
            Ok(CelValue::Bool(true)) => {
                self.budget -= cost;
                return true;
            }
            Ok(_) => self.budget -= cost,
        }
        let at = match &rule.field_path {
            Some(relative) => join(path, relative),
            None => path.to_string(),
        };
        let mut detail = None;
        if let Some(message) = &rule.message {
            let (result, cost) = message.eval(bindings, PER_CALL_LIMIT.min(self.budget));
            match result {
                Err(EvalError::CostLimit) if cost > PER_CALL_LIMIT => {
                    self.verdict.errors.push(invalid(
                        &at,
                        node,
                        &format!(
                            "no further validation rules will be run due to call cost exceeds limit for messageExpression: {}",
                            go_quote(message.source())
                        ),
                    ));
                    return false;
                }
                Err(EvalError::CostLimit) => {
                    self.verdict.errors.push(invalid(
                        &at,
                        node,
                        "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run",
                    ));
                    return false;
                }
                Ok(CelValue::String(text)) => {
                    self.budget -= cost;
                    let text = text.trim();
                    if !text.is_empty() && text.len() <= MAX_MESSAGE_BYTES && !text.contains('\n') {
                        detail = Some(text.to_string());
                    }
                }
                _ => self.budget -= cost,
            }
        }
        let detail = detail.unwrap_or_else(|| {
            let message = rule.spec.message.trim();
            if message.is_empty() {
                format!("failed rule: {}", rule.spec.error_string())
            } else {
                message.to_string()
            }
        });
        let ty = node
            .schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let at = display(&at);
        let error = match rule.spec.reason.as_deref() {
            Some("FieldValueForbidden") => FieldError::forbidden(at, &detail),
            Some("FieldValueRequired") => FieldError::required(at, &detail),
            Some("FieldValueDuplicate") => FieldError::duplicate(at, &Value::String(ty.into())),
            _ => FieldError::invalid(at, Bad::Str(ty), &detail),
        };
        if !rule.uses_old_self && correlation.ratchets() {
            self.verdict.warnings.push(error.to_string());
        } else {
            self.verdict.errors.push(error);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(schema: &Value) -> Rules {
        let compiled = compile(schema, "openAPIV3Schema");
        let errors: Vec<String> = compiled.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors, Vec::<String>::new());
        compiled.rules.expect("rules")
    }

    /// Why the CRD is refused, relative to its schema as `check_schema` reports.
    fn refusals(schema: &Value) -> Vec<String> {
        compile(schema, "spec.validation.openAPIV3Schema")
            .errors
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn messages(verdict: &Verdict) -> Vec<String> {
        verdict.errors.iter().map(ToString::to_string).collect()
    }

    fn replicas_schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.minReplicas <= self.maxReplicas", "message": "minReplicas must not exceed maxReplicas", "fieldPath": ".minReplicas"},
                {"rule": "self.image == oldSelf.image", "message": "image is immutable", "reason": "FieldValueForbidden"}],
            "properties": {
                "minReplicas": {"type": "integer"}, "maxReplicas": {"type": "integer"},
                "image": {"type": "string", "maxLength": 64}}}}})
    }

    #[test]
    fn cross_field_and_transition_rules_with_the_real_wording() {
        let rules = rules(&replicas_schema());
        let bad = json!({"spec": {"minReplicas": 5, "maxReplicas": 2, "image": "a"}});
        assert_eq!(
            messages(&rules.validate(&bad, None)),
            [
                "spec.minReplicas: Invalid value: \"object\": minReplicas must not exceed maxReplicas"
            ]
        );
        let old = json!({"spec": {"minReplicas": 1, "maxReplicas": 2, "image": "a"}});
        let changed = json!({"spec": {"minReplicas": 1, "maxReplicas": 3, "image": "b"}});
        assert_eq!(
            messages(&rules.validate(&changed, Some(&old))),
            ["spec: Forbidden: image is immutable"]
        );
        let scaled = json!({"spec": {"minReplicas": 2, "maxReplicas": 3, "image": "a"}});
        assert!(rules.validate(&scaled, Some(&old)).errors.is_empty());
    }

    #[test]
    fn unchanged_invalid_values_ratchet_to_warnings() {
        let rules = rules(&replicas_schema());
        let old = json!({"spec": {"minReplicas": 5, "maxReplicas": 2, "image": "a"}, "status": {}});
        let status_change =
            json!({"spec": {"minReplicas": 5, "maxReplicas": 2, "image": "a"}, "status": {"x": 1}});
        let verdict = rules.validate(&status_change, Some(&old));
        assert!(verdict.errors.is_empty(), "{:?}", verdict.errors);
        assert_eq!(
            verdict.warnings,
            [
                "spec.minReplicas: Invalid value: \"object\": minReplicas must not exceed maxReplicas"
            ]
        );
        let worse = json!({"spec": {"minReplicas": 6, "maxReplicas": 2, "image": "a"}});
        assert_eq!(rules.validate(&worse, Some(&old)).errors.len(), 1);
    }

    #[test]
    fn message_expressions_reasons_and_root_rules() {
        let schema = json!({"type": "object",
            "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('app-')",
                "messageExpression": "'name ' + self.metadata.name + ' must start with app-'"}],
            "properties": {"spec": {"type": "object", "properties": {
                "tags": {"type": "array", "items": {"type": "string"},
                    "x-kubernetes-validations": [{"rule": "self.size() == 0 || self.exists(t, t == 'prod')", "reason": "FieldValueRequired", "message": "needs a prod tag"}]}}}}});
        let rules = rules(&schema);
        let object = json!({"metadata": {"name": "web"}, "spec": {"tags": ["dev"]}});
        assert_eq!(
            messages(&rules.validate(&object, None)),
            [
                "<nil>: Invalid value: \"object\": name web must start with app-",
                "spec.tags: Required value: needs a prod tag",
            ]
        );
    }

    #[test]
    fn runtime_errors_name_the_rule() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.a > 0"}],
            "properties": {"a": {"type": "integer"}}}}});
        let verdict = rules(&schema).validate(&json!({"spec": {}}), None);
        assert_eq!(
            messages(&verdict),
            ["spec: Invalid value: \"object\": no such key: a evaluating rule: self.a > 0"]
        );
    }

    #[test]
    fn rules_that_do_not_compile_refuse_the_crd() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-validations": [{"rule": "self.replicas >"}, {"rule": "self.nope == 1"}, {"rule": "self.replicas"},
                {"rule": "self.replicas == oldSelf.replicas", "reason": "Nonsense"}, {"rule": "self.replicas > 0", "optionalOldSelf": true}],
            "properties": {"replicas": {"type": "integer"},
                "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}},
                    "x-kubernetes-validations": [{"rule": "self.a == oldSelf.a"}]}}}}}});
        let errors = refusals(&schema);
        let at = "properties[spec].x-kubernetes-validations";
        let has = |field: String, text: &str| {
            let found = errors
                .iter()
                .any(|e| e.starts_with(&field) && e.contains(text));
            assert!(found, "{field} {text}: {errors:#?}");
        };
        has(
            format!(
                "{at}[0].rule: Invalid value: apiextensions.ValidationRule{{Rule:\"self.replicas >\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}"
            ),
            ": compilation failed: ERROR: <input>:1:16: Syntax error:",
        );
        has(format!("{at}[1].rule:"), "undefined field 'nope'");
        has(
            format!("{at}[2].rule:"),
            ": cel expression must evaluate to a bool",
        );
        assert!(errors.contains(&format!("{at}[3].reason: Unsupported value: \"Nonsense\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\"")), "{errors:#?}");
        assert!(errors.contains(&format!("{at}[4].optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule")), "{errors:#?}");
        assert!(errors.contains(&"properties[spec].properties[items].items.x-kubernetes-validations[0].rule: Invalid value: \"self.a == oldSelf.a\": oldSelf cannot be used on the uncorrelatable portion of the schema within spec.validation.openAPIV3Schema.properties[spec].properties[items]".to_string()), "{errors:#?}");
    }

    #[test]
    fn expensive_rules_are_refused_with_the_budget_factor() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "names": {"type": "array", "items": {"type": "string"},
                "x-kubernetes-validations": [{"rule": "self.all(x, self.exists(y, x == y))"}]}}}}});
        let errors = refusals(&schema);
        assert!(errors.contains(&"properties[spec].properties[names].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of more than 100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)".to_string()), "{errors:#?}");
        let bounded = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "names": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 30},
                "x-kubernetes-validations": [{"rule": "self.all(x, self.exists(y, x == y))"}]}}}}});
        assert_eq!(refusals(&bounded), Vec::<String>::new());
    }

    #[test]
    fn field_paths_are_checked_and_normalized() {
        let schema = json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"x": {"type": "string"}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}}}});
        assert_eq!(
            normalize_field_path(".spec.x", &schema).as_deref(),
            Some("spec.x")
        );
        assert_eq!(
            normalize_field_path(".labels['a.b']", &schema).as_deref(),
            Some("labels[a.b]")
        );
        assert_eq!(normalize_field_path(".spec.y", &schema), None);
        assert_eq!(normalize_field_path("spec", &schema), None);
    }

    fn arb_rule() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just("self.names"),
            Just("self.count"),
            Just("self.text"),
            Just("oldSelf.count"),
            Just("1"),
            Just("'a,b'"),
            Just("true"),
            Just("[1, 2, 3]"),
            Just("x"),
            Just("1000000"),
            Just("self.names.size()"),
            Just("null"),
            Just("{'k': 1}"),
        ]
        .prop_map(str::to_string);
        let rule = leaf.prop_recursive(5, 64, 3, |inner| {
            let two = (inner.clone(), inner.clone());
            prop_oneof![
                two.clone().prop_map(|(a, b)| format!("{a}.all(x, {b})")),
                two.clone().prop_map(|(a, b)| format!("{a}.exists(x, {b})")),
                two.clone().prop_map(|(a, b)| format!("{a}.map(x, {b})")),
                two.clone().prop_map(|(a, b)| format!("{a}.filter(x, {b})")),
                two.clone().prop_map(|(a, b)| format!("{a} + {b}")),
                two.clone().prop_map(|(a, b)| format!("{a} == {b}")),
                two.clone().prop_map(|(a, b)| format!("{a} && {b}")),
                two.clone().prop_map(|(a, b)| format!("{a} / {b}")),
                two.clone()
                    .prop_map(|(a, b)| format!("{a}.replace('a', {b})")),
                two.clone()
                    .prop_map(|(a, b)| format!("cel.bind(y, {a}, {b} == y)")),
                two.prop_map(|(a, b)| format!("{a} ? {b} : {a}")),
                inner.clone().prop_map(|a| format!("!{a}")),
                inner.clone().prop_map(|a| format!("{a}[0]")),
                inner.clone().prop_map(|a| format!("size({a})")),
                inner.clone().prop_map(|a| format!("lists.range({a})")),
                inner.clone().prop_map(|a| format!("{a}.split(',')")),
                inner.clone().prop_map(|a| format!("{a}.matches('(a+)+$')")),
                inner
                    .clone()
                    .prop_map(|a| format!("string({a}).lowerAscii()")),
                inner.prop_map(|a| format!("({a})")),
            ]
        });
        prop_oneof![4 => rule, 1 => "[a-z().\\[\\]' ,+*/<>=!&|?:0-9]{0,40}"]
    }

    /// The forms the server's refusals of a rule take.
    const REFUSALS: [&str; 6] = [
        ": Required value: rule is not specified",
        ": compilation failed: ",
        ": cel expression must evaluate to a bool",
        ": Forbidden: estimated rule cost exceeds budget by factor of ",
        ": Forbidden: contributed to estimated rule cost total exceeding cost limit",
        "oldSelf cannot be used on the uncorrelatable portion",
    ];

    /// The forms failures of a compiled rule take at run time.
    const FAILURES: [&str; 4] = [
        " evaluating rule: ",
        "': call arguments did not match a supported operator, function or macro signature for rule: ",
        "failed rule: ",
        "no further validation rules will be run",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(192))]
        #[test]
        fn arbitrary_rules_are_refused_or_run_within_their_limits(rule in arb_rule()) {
            let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
                "x-kubernetes-validations": [{"rule": rule}],
                "properties": {
                    "names": {"type": "array", "items": {"type": "string"}},
                    "count": {"type": "integer"},
                    "text": {"type": "string", "maxLength": 100}}}}});
            let compiled = compile(&schema, "spec.validation.openAPIV3Schema");
            for error in &compiled.errors {
                let text = error.to_string();
                proptest::prop_assert!(
                    REFUSALS.iter().any(|form| text.contains(form)) || text.ends_with(": Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of more than 100x (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)") || text.contains("exceeds budget by factor of"),
                    "{}", text
                );
            }
            proptest::prop_assert_eq!(compiled.rules.is_some(), compiled.errors.is_empty());
            if let Some(rules) = compiled.rules {
                let names: Vec<String> = (0..300).map(|i| format!("name-{i}")).collect();
                let object = json!({"spec": {"names": names, "count": 3, "text": "hello"}});
                let old = json!({"spec": {"names": ["a"], "count": 2, "text": "hi"}});
                for verdict in [rules.validate(&object, None), rules.validate(&object, Some(&old))] {
                    for error in verdict.errors.iter().map(ToString::to_string).chain(verdict.warnings) {
                        proptest::prop_assert!(FAILURES.iter().any(|form| error.contains(form)), "{}", error);
                    }
                }
            }
        }
    }
}
