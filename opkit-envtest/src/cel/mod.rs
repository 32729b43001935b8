//! CEL as kube-apiserver runs it: expressions are parsed and checked when
//! the object declaring them is written (a CRD's `x-kubernetes-validations`,
//! a ValidatingAdmissionPolicy, a webhook's `matchConditions`), their cost is
//! estimated, and they are evaluated with a cost limit.
//!
//! Parsing and evaluation are kube's CEL support (the `cel` interpreter with
//! the Kubernetes libraries of `kube-cel`); the checks and the cost model
//! follow cel-go's, over the types and size bounds of [`types::Decl`].

mod analysis;
mod library;
pub(crate) mod types;
pub(crate) mod values;

use analysis::analyze;
use kube::core::cel::cel::common::ast::{EntryExpr, Expr};
use kube::core::cel::cel::parser::Parser;
use kube::core::cel::cel::{ExecutionError, IdedExpr, Value as CelValue};
use std::panic::{AssertUnwindSafe, catch_unwind};
pub(crate) use types::{Decl, Kind};

/// The most one evaluation may cost (`PerCallLimit`).
pub(crate) const PER_CALL_LIMIT: u64 = 1_000_000;
/// The most all the rules of one write may cost (`RuntimeCELCostBudget`).
pub(crate) const RUNTIME_BUDGET: u64 = 10_000_000;
/// What cel-go answers when an evaluation goes over its limit.
pub(crate) const COST_LIMIT_EXCEEDED: &str = "operation cancelled: actual cost limit exceeded";

/// A parsed and checked expression.
#[derive(Debug)]
pub(crate) struct Program {
    expr: IdedExpr,
    source: String,
    /// Its worst-case cost over values within the declared bounds.
    bound: u64,
}

/// What compiling an expression found out.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) program: Program,
    /// The type the expression yields.
    pub(crate) result: Decl,
    /// Its worst-case cost with the declared bounds.
    pub(crate) cost: u64,
}

/// The deepest expression tree accepted: evaluation recurses along it on
/// the server's threads, whose stacks are small.
const MAX_DEPTH: usize = 100;

/// Parses `source` and checks it with `vars` declared. The error is the
/// detail kube-apiserver gives (`compilation failed: ERROR: <input>:1:6: ...`).
pub(crate) fn compile(source: &str, vars: &[(&str, Decl)]) -> Result<Compiled, String> {
    // The parser recurses as deep as the source nests, before any limit
    // applies: it gets a stack of its own that no source can exhaust.
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("cel-compile".into())
            .stack_size(512 << 20)
            .spawn_scoped(scope, || compile_here(source, vars))
            .map_err(|e| format!("compilation failed: {e}"))?
            .join()
            .unwrap_or_else(|_| Err("compilation failed: ERROR: <input>:1:1: Syntax error".into()))
    })
}

fn compile_here(source: &str, vars: &[(&str, Decl)]) -> Result<Compiled, String> {
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        Parser::new().enable_optional_syntax(true).parse(source)
    }));
    let mut expr = match parsed {
        Ok(Ok(expr)) => expr,
        // The parser quotes the source as `| line`; cel-go indents it: ` | line`.
        Ok(Err(errors)) => {
            return Err(format!(
                "compilation failed: {}",
                errors.to_string().replace("\n| ", "\n | ")
            ));
        }
        Err(_) => return Err("compilation failed: ERROR: <input>:1:1: Syntax error".into()),
    };
    if depth(&expr) > MAX_DEPTH {
        return Err(format!(
            "compilation failed: ERROR: <input>:1:1: expression recursion limit exceeded: {MAX_DEPTH}"
        ));
    }
    rewrite_optional_selects(&mut expr);
    let analysis = analyze(&expr, source, vars, true);
    if !analysis.errors.is_empty() {
        return Err(format!(
            "compilation failed: {}",
            analysis.errors.join("\n")
        ));
    }
    Ok(Compiled {
        program: Program {
            expr,
            source: source.to_string(),
            bound: analysis.cost,
        },
        result: analysis.decl,
        cost: analysis.cost,
    })
}

/// How deep the expression tree nests.
fn depth(expr: &IdedExpr) -> usize {
    children(expr).into_iter().map(depth).max().unwrap_or(0) + 1
}

/// The sub-expressions of an expression.
fn children(expr: &IdedExpr) -> Vec<&IdedExpr> {
    match &expr.expr {
        Expr::Call(call) => call
            .target
            .as_deref()
            .into_iter()
            .chain(&call.args)
            .collect(),
        Expr::Select(select) => vec![&select.operand],
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(map) => map
            .entries
            .iter()
            .flat_map(|entry| match &entry.expr {
                EntryExpr::MapEntry(e) => vec![&e.key, &e.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Struct(s) => s
            .entries
            .iter()
            .flat_map(|entry| match &entry.expr {
                EntryExpr::MapEntry(e) => vec![&e.key, &e.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

/// `x.?f` becomes a call of the library's own optional selection.
fn rewrite_optional_selects(expr: &mut IdedExpr) {
    match &mut expr.expr {
        Expr::Call(call) => {
            if call.func_name == "_?._" {
                call.func_name = library::OPTIONAL_SELECT.to_string();
            }
            if let Some(target) = call.target.as_deref_mut() {
                rewrite_optional_selects(target);
            }
            call.args.iter_mut().for_each(rewrite_optional_selects);
        }
        Expr::Select(select) => rewrite_optional_selects(&mut select.operand),
        Expr::List(list) => list.elements.iter_mut().for_each(rewrite_optional_selects),
        Expr::Map(map) => {
            for entry in &mut map.entries {
                if let EntryExpr::MapEntry(entry) = &mut entry.expr {
                    rewrite_optional_selects(&mut entry.key);
                    rewrite_optional_selects(&mut entry.value);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &mut s.entries {
                if let EntryExpr::StructField(field) = &mut entry.expr {
                    rewrite_optional_selects(&mut field.value);
                }
            }
        }
        Expr::Comprehension(comp) => {
            rewrite_optional_selects(&mut comp.iter_range);
            rewrite_optional_selects(&mut comp.accu_init);
            rewrite_optional_selects(&mut comp.loop_cond);
            rewrite_optional_selects(&mut comp.loop_step);
            rewrite_optional_selects(&mut comp.result);
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// Values bound to an expression's variables.
#[derive(Default)]
pub(crate) struct Bindings {
    vars: Vec<(String, CelValue)>,
    /// Their types and actual sizes, computed when a cost needs them.
    decls: std::sync::OnceLock<Vec<(String, Decl)>>,
    within_bounds: bool,
}

impl Bindings {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Binds `name` to `value`.
    pub(crate) fn bind(mut self, name: &str, value: CelValue) -> Self {
        self.vars.push((name.to_string(), value));
        self
    }

    /// Declares the values within the bounds the expressions were compiled
    /// with (validated, not ratcheted), so their estimate bounds the cost.
    pub(crate) fn within_bounds(mut self) -> Self {
        self.within_bounds = true;
        self
    }

    fn decls(&self) -> &[(String, Decl)] {
        self.decls.get_or_init(|| {
            self.vars
                .iter()
                .map(|(n, v)| (n.clone(), Decl::of(v)))
                .collect()
        })
    }
}

/// Why an evaluation gave no value.
#[derive(Debug, PartialEq)]
pub(crate) enum EvalError {
    /// It would cost more than the limit.
    CostLimit,
    /// It failed, with cel-go's wording (`no such key: x`).
    Failed(String),
}

impl std::fmt::Display for EvalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EvalError::CostLimit => f.write_str(COST_LIMIT_EXCEEDED),
            EvalError::Failed(message) => f.write_str(message),
        }
    }
}

impl Program {
    /// The source it was compiled from.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Whether it refers to the variable `name`.
    pub(crate) fn uses(&self, name: &str) -> bool {
        fn walk(e: &IdedExpr, name: &str) -> bool {
            matches!(&e.expr, Expr::Ident(n) if n == name)
                || children(e).into_iter().any(|c| walk(c, name))
        }
        walk(&self.expr, name)
    }

    /// Whether it reads `variable.field`.
    pub(crate) fn uses_field(&self, variable: &str, field: &str) -> bool {
        fn walk(e: &IdedExpr, variable: &str, field: &str) -> bool {
            let here = matches!(&e.expr, Expr::Select(s)
                if s.field == field && matches!(&s.operand.expr, Expr::Ident(v) if v == variable));
            here || children(e).into_iter().any(|c| walk(c, variable, field))
        }
        walk(&self.expr, variable, field)
    }

    /// The most evaluating it over these values can cost.
    pub(crate) fn cost(&self, bindings: &Bindings) -> u64 {
        let vars: Vec<(&str, Decl)> = bindings
            .decls()
            .iter()
            .map(|(n, d)| (n.as_str(), d.clone()))
            .collect();
        catch_unwind(AssertUnwindSafe(|| {
            analyze(&self.expr, &self.source, &vars, false).cost
        }))
        .unwrap_or(u64::MAX)
    }

    /// Evaluates it, unless it could cost more than `limit`; returns the
    /// value and the cost charged, the least upper bound at hand.
    pub(crate) fn eval(
        &self,
        bindings: &Bindings,
        limit: u64,
    ) -> (Result<CelValue, EvalError>, u64) {
        let cost = if bindings.within_bounds && self.bound <= limit {
            self.bound
        } else {
            self.cost(bindings)
        };
        if cost > limit {
            return (Err(EvalError::CostLimit), cost);
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            library::with_base(|base| {
                let mut scope = base.new_inner_scope();
                for (name, value) in &bindings.vars {
                    scope.add_variable_from_value(name.clone(), value.clone());
                }
                scope.resolve(&self.expr)
            })
        }));
        let value = match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(EvalError::Failed(runtime_message(&e))),
            Err(_) => Err(EvalError::Failed(
                "internal error evaluating the expression".into(),
            )),
        };
        (value, cost)
    }
}

/// cel-go's wording of an evaluation error.
fn runtime_message(error: &ExecutionError) -> String {
    match error {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::NoSuchOverload
        | ExecutionError::UnsupportedBinaryOperator(..)
        | ExecutionError::UnsupportedUnaryOperator(..)
        | ExecutionError::ValuesNotComparable(..)
        | ExecutionError::UnsupportedTargetType { .. }
        | ExecutionError::UnexpectedType { .. } => "no such overload".into(),
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        ExecutionError::Overflow(..) => "integer overflow".into(),
        ExecutionError::IndexOutOfBounds(index) => match index {
            CelValue::Int(i) => format!("index out of bounds: {i}"),
            other => format!("index out of bounds: {other:?}"),
        },
        ExecutionError::FunctionError { message, .. } => message.clone(),
        ExecutionError::UndeclaredReference(name) => {
            format!("no such attribute(s): {name}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn self_of(schema: serde_json::Value) -> Vec<(&'static str, Decl)> {
        vec![("self", Decl::from_schema(&schema, false))]
    }

    #[test]
    fn syntax_errors_read_as_cel_go_prints_them() {
        let error = compile("self.a >", &[]).expect_err("incomplete");
        assert!(
            error.starts_with("compilation failed: ERROR: <input>:1:9: Syntax error: mismatched input '<EOF>' expecting"),
            "{error}"
        );
        assert!(error.ends_with("\n | self.a >\n | ........^"), "{error}");
    }

    #[test]
    fn undefined_fields_and_names_are_compile_errors() {
        let vars =
            self_of(json!({"type": "object", "properties": {"replicas": {"type": "integer"}}}));
        assert_eq!(
            compile("self.replica > 0", &vars).expect_err("undefined"),
            "compilation failed: ERROR: <input>:1:5: undefined field 'replica'\n | self.replica > 0\n | ....^"
        );
        assert_eq!(
            compile("other == 1", &vars).expect_err("undeclared"),
            "compilation failed: ERROR: <input>:1:1: undeclared reference to 'other' (in container '')\n | other == 1\n | ^"
        );
        assert!(
            compile("self.replicas > 'x'", &vars)
                .expect_err("mismatched")
                .contains("found no matching overload for '_>_' applied to '(int, string)'")
        );
        let compiled = compile("self.replicas > 1 && has(self.replicas)", &vars).expect("valid");
        assert_eq!(compiled.result.kind, Kind::Bool);
    }

    #[test]
    fn comprehension_cost_grows_with_the_bounds() {
        let bounded = self_of(
            json!({"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 5}}),
        );
        let unbounded = self_of(json!({"type": "array", "items": {"type": "string"}}));
        let rule = "self.all(x, self.exists(y, x == y))";
        let small = compile(rule, &bounded).expect("valid").cost;
        let large = compile(rule, &unbounded).expect("valid").cost;
        assert!(small < 1_000, "{small}");
        assert!(large > PER_CALL_LIMIT * 100, "{large}");
    }

    #[test]
    fn evaluation_is_refused_past_the_limit_and_errors_use_cel_go_words() {
        let compiled = compile(
            "self.all(x, self.all(y, x != y || true))",
            &[("self", Decl::dyn_())],
        )
        .expect("valid");
        let items = CelValue::List(std::sync::Arc::new((0..2000).map(CelValue::Int).collect()));
        let bindings = Bindings::new().bind("self", items);
        let (result, cost) = compiled.program.eval(&bindings, PER_CALL_LIMIT);
        assert_eq!(result, Err(EvalError::CostLimit));
        assert!(cost > PER_CALL_LIMIT);
        let missing = compile("self.b == 1", &[("self", Decl::dyn_())]).expect("valid");
        let object = values::from_json(&json!({"a": 1}));
        let (result, _) = missing
            .program
            .eval(&Bindings::new().bind("self", object), PER_CALL_LIMIT);
        assert_eq!(result, Err(EvalError::Failed("no such key: b".into())));
    }

    #[test]
    fn optional_selection_and_bind_work() {
        let vars = [("self", Decl::dyn_())];
        let object = values::from_json(&json!({"a": 1}));
        for (rule, expected) in [
            ("self.?b.orValue(3) == 3", true),
            ("self.?a.orValue(3) == 1", true),
            ("cel.bind(x, self.a + 1, x * x) == 4", true),
            ("optional.of(self).optMap(o, o.a).value() == 1", true),
        ] {
            let compiled = compile(rule, &vars).expect("valid");
            let (result, _) = compiled.program.eval(
                &Bindings::new().bind("self", object.clone()),
                PER_CALL_LIMIT,
            );
            assert_eq!(result, Ok(CelValue::Bool(expected)), "{rule}");
        }
    }
}
