//! What a rule refers to, the type it yields and what it may cost, from its
//! syntax tree: the checks kube-apiserver's CEL compiler makes (undefined
//! fields, undeclared names, a non-bool result) and cel-go's cost model
//! (`checker/cost.go`), over the sizes a [`Decl`] allows.

use super::library::{FUNCTIONS, NAMESPACES, OPTIONAL_SELECT, UNSUPPORTED};
use super::types::{Decl, Kind, MAX_REQUEST_BYTES};
use kube::core::cel::cel::IdedExpr;
use kube::core::cel::cel::common::ast::{CallExpr, EntryExpr, Expr, LiteralValue};
use std::sync::Arc;

/// cel-go's costs: constants are free, identifiers and selections cost 1,
/// creating a list 10 and a map 30.
const SELECT_COST: u64 = 1;
const LIST_CREATE_COST: u64 = 10;
const MAP_CREATE_COST: u64 = 30;

/// What the analysis found.
pub(crate) struct Analysis {
    /// The result's type and size.
    pub(crate) decl: Decl,
    /// The most the evaluation can cost, in cel-go's units.
    pub(crate) cost: u64,
    /// Compile errors, as cel-go prints them (`ERROR: <input>:1:6: ...`).
    pub(crate) errors: Vec<String>,
}

/// Analyzes `expr` (parsed from `source`) with `vars` in scope. Without
/// `check`, only the type and cost are computed (at run time, over the
/// actual values).
pub(crate) fn analyze(
    expr: &IdedExpr,
    source: &str,
    vars: &[(&str, Decl)],
    check: bool,
) -> Analysis {
    let mut analyzer = Analyzer {
        source,
        scopes: vars
            .iter()
            .map(|(n, d)| (n.to_string(), d.clone()))
            .collect(),
        check,
        errors: Vec::new(),
    };
    let est = analyzer.expr(expr);
    Analysis {
        decl: est.decl,
        cost: est.cost,
        errors: analyzer.errors,
    }
}

struct Est {
    decl: Decl,
    cost: u64,
}

impl Est {
    fn new(decl: Decl, cost: u64) -> Self {
        Self { decl, cost }
    }
}

struct Analyzer<'s> {
    source: &'s str,
    scopes: Vec<(String, Decl)>,
    check: bool,
    errors: Vec<String>,
}

/// `ceil(size * 0.1)`, cel-go's cost of traversing a string.
fn traversal(size: u64) -> u64 {
    size.div_ceil(10)
}

impl Analyzer<'_> {
    fn lookup(&self, name: &str) -> Option<&Decl> {
        self.scopes
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d)
    }

    fn error_at(&mut self, offset: Option<usize>, message: String) {
        if !self.check {
            return;
        }
        let offset = offset.unwrap_or(0);
        let (mut line, mut col, mut line_start) = (1, 1, 0);
        for (i, c) in self.source.char_indices() {
            if i >= offset {
                break;
            }
            if c == '\n' {
                line += 1;
                col = 1;
                line_start = i + 1;
            } else {
                col += 1;
            }
        }
        let text = self.source[line_start..].lines().next().unwrap_or("");
        let dots = ".".repeat(col - 1);
        self.errors.push(format!(
            "ERROR: <input>:{line}:{col}: {message}\n | {text}\n | {dots}^"
        ));
    }

    /// Where `.field` (or `.?field`) first appears in the source.
    fn select_offset(&self, field: &str) -> Option<usize> {
        let pattern = format!(r"\.\s*\??\s*{}\b", regex::escape(field));
        regex::Regex::new(&pattern)
            .ok()?
            .find(self.source)
            .map(|m| m.start())
    }

    /// Where the name first appears on its own (not after a `.`).
    fn name_offset(&self, name: &str) -> Option<usize> {
        let pattern = format!(r"\b{}\b", regex::escape(name));
        let re = regex::Regex::new(&pattern).ok()?;
        re.find_iter(self.source)
            .map(|m| m.start())
            .find(|&start| !self.source[..start].trim_end().ends_with('.'))
            .or_else(|| re.find(self.source).map(|m| m.start()))
    }

    fn expr(&mut self, e: &IdedExpr) -> Est {
        match &e.expr {
            Expr::Literal(literal) => Est::new(literal_decl(literal), 0),
            Expr::Ident(name) => self.ident(name),
            Expr::Select(select) => {
                let operand = self.expr(&select.operand);
                if select.test {
                    self.field(&operand.decl, &select.field);
                    return Est::new(Decl::new(Kind::Bool), operand.cost + SELECT_COST);
                }
                let decl = self.field(&operand.decl, &select.field);
                Est::new(decl, operand.cost + SELECT_COST)
            }
            Expr::List(list) => {
                let mut cost = LIST_CREATE_COST;
                let mut elem = Decl::new(Kind::Never);
                for item in &list.elements {
                    let est = self.expr(item);
                    cost = cost.saturating_add(est.cost);
                    elem = elem.union(&est.decl);
                }
                Est::new(Decl::list(elem, list.elements.len() as u64), cost)
            }
            Expr::Map(map) => {
                let mut cost = MAP_CREATE_COST;
                let mut value = Decl::new(Kind::Never);
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(entry) = &entry.expr {
                        cost = cost.saturating_add(self.expr(&entry.key).cost);
                        let est = self.expr(&entry.value);
                        cost = cost.saturating_add(est.cost);
                        value = value.union(&est.decl);
                    }
                }
                let size = map.entries.len() as u64;
                Est::new(Decl::sized(Kind::Map(Arc::new(value)), size), cost)
            }
            Expr::Comprehension(comp) => {
                let range = self.expr(&comp.iter_range);
                if !matches!(
                    range.decl.kind,
                    Kind::List(_) | Kind::Map(_) | Kind::Object(_) | Kind::Dyn | Kind::Never
                ) {
                    self.error_at(
                        None,
                        format!(
                            "expression of type '{}' cannot be the range of a comprehension (must be list, map, or dynamic)",
                            range.decl.name()
                        ),
                    );
                }
                let init = self.expr(&comp.accu_init);
                let count = range.decl.max;
                let mut item = range.decl.iteration();
                if let Some(value) = &comp.iter_var2 {
                    let values = match &range.decl.kind {
                        Kind::List(elem) | Kind::Map(elem) => (**elem).clone(),
                        _ => Decl::dyn_(),
                    };
                    if matches!(range.decl.kind, Kind::List(_)) {
                        item = Decl::new(Kind::Int);
                    }
                    self.scopes.push((value.clone(), values));
                }
                self.scopes.push((comp.iter_var.clone(), item));
                let accu = match &init.decl.kind {
                    Kind::List(_) => {
                        Decl::sized(Kind::List(Arc::new(Decl::new(Kind::Never))), count)
                    }
                    _ => init.decl.clone(),
                };
                self.scopes.push((comp.accu_var.clone(), accu.clone()));
                let cond = self.expr(&comp.loop_cond);
                let step = self.expr(&comp.loop_step);
                self.scopes.pop();
                self.scopes.pop();
                if comp.iter_var2.is_some() {
                    self.scopes.pop();
                }
                let result_accu = match (&accu.kind, &step.decl.kind) {
                    (Kind::List(_), Kind::List(elem)) => Decl::list((**elem).clone(), count),
                    _ => accu,
                };
                self.scopes.push((comp.accu_var.clone(), result_accu));
                let result = self.expr(&comp.result);
                self.scopes.pop();
                let per_item = cond.cost.saturating_add(step.cost);
                let cost = range
                    .cost
                    .saturating_add(init.cost)
                    .saturating_add(count.saturating_mul(per_item))
                    .saturating_add(result.cost);
                Est::new(result.decl, cost)
            }
            Expr::Call(call) => self.call(call),
            Expr::Struct(_) | Expr::Unspecified => Est::new(Decl::dyn_(), 1),
        }
    }

    fn ident(&mut self, name: &str) -> Est {
        if let Some(decl) = self.lookup(name) {
            return Est::new(decl.clone(), SELECT_COST);
        }
        if matches!(
            name,
            "int" | "uint" | "double" | "bool" | "string" | "bytes" | "list" | "map" | "null_type"
        ) {
            return Est::new(Decl::new(Kind::Opaque("type")), 0);
        }
        let offset = self.name_offset(name);
        self.error_at(
            offset,
            format!("undeclared reference to '{name}' (in container '')"),
        );
        Est::new(Decl::dyn_(), SELECT_COST)
    }

    /// The type of `.field` on a value of `decl`, reporting fields the schema does not declare.
    fn field(&mut self, decl: &Decl, field: &str) -> Decl {
        if let Kind::Optional(inner) = &decl.kind {
            let inner = self.field(inner, field);
            return Decl::new(Kind::Optional(Arc::new(inner)));
        }
        match decl.field(field) {
            Some(found) => found,
            None => {
                let offset = self.select_offset(field);
                let message = match decl.kind {
                    Kind::Object(_) => format!("undefined field '{field}'"),
                    _ => format!("type '{}' does not support field selection", decl.name()),
                };
                self.error_at(offset, message);
                Decl::dyn_()
            }
        }
    }

    fn call(&mut self, call: &CallExpr) -> Est {
        let namespace = match call.target.as_deref().map(|t| &t.expr) {
            Some(Expr::Ident(ns))
                if self.lookup(ns).is_none() && NAMESPACES.contains(&ns.as_str()) =>
            {
                Some(ns.clone())
            }
            _ => None,
        };
        let name = match &namespace {
            Some(ns) => format!("{ns}.{}", call.func_name),
            None => call.func_name.clone(),
        };
        match name.as_str() {
            "cel.bind" => return self.bind(call),
            "optMap" | "optFlatMap" => return self.opt_map(call, &name),
            _ => {}
        }
        let target = match (&call.target, &namespace) {
            (Some(target), None) => Some(self.expr(target)),
            _ => None,
        };
        let args: Vec<Est> = call.args.iter().map(|a| self.expr(a)).collect();
        let arg_cost = args
            .iter()
            .chain(target.iter())
            .fold(0u64, |sum, a| sum.saturating_add(a.cost));
        if !name.starts_with(['_', '@']) && !name.ends_with('_') {
            self.check_function(&name);
        }
        if let Some(receiver) = &target {
            self.check_receiver(&name, &receiver.decl, &args);
        }
        let size = |i: usize| args.get(i).map_or(0, |a| a.decl.max);
        let target_size = target.as_ref().map_or(size(0), |t| t.decl.max);
        let bool_of = |cost: u64| Est::new(Decl::new(Kind::Bool), cost.saturating_add(arg_cost));
        match name.as_str() {
            "_&&_" | "_||_" => {
                self.check_operands(&name, &args);
                bool_of(0)
            }
            "!_" => {
                self.check_operands(&name, &args);
                bool_of(1)
            }
            "@not_strictly_false" => bool_of(1),
            "_?_:_" => {
                self.check_operands(&name, &args);
                let (then, otherwise) = (&args[1], &args[2]);
                let cost = args[0].cost.saturating_add(then.cost.max(otherwise.cost));
                Est::new(then.decl.union(&otherwise.decl), cost)
            }
            "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" => {
                self.check_operands(&name, &args);
                bool_of(1 + traversal(size(0).min(size(1))))
            }
            "@in" => bool_of(size(1)),
            "_+_" => {
                self.check_operands(&name, &args);
                let (a, b) = (&args[0].decl, &args[1].decl);
                let total = a.max.saturating_add(b.max);
                match &a.kind {
                    Kind::String | Kind::Bytes => Est::new(
                        Decl::sized(a.kind.clone(), total),
                        traversal(total).saturating_add(arg_cost),
                    ),
                    Kind::List(_) => {
                        let joined = a.union(b);
                        Est::new(Decl::sized(joined.kind, total), 1 + arg_cost)
                    }
                    _ => Est::new(a.union(b), 1 + arg_cost),
                }
            }
            "_-_" | "_*_" | "_/_" | "_%_" => {
                self.check_operands(&name, &args);
                Est::new(args[0].decl.union(&args[1].decl), 1 + arg_cost)
            }
            "-_" => {
                self.check_operands(&name, &args);
                Est::new(args[0].decl.clone(), 1 + arg_cost)
            }
            "_[_]" => {
                self.check_operands(&name, &args);
                let decl = match &args[0].decl.kind {
                    Kind::List(elem) | Kind::Map(elem) => (**elem).clone(),
                    Kind::Object(_) | Kind::Dyn => Decl::dyn_(),
                    _ => Decl::dyn_(),
                };
                Est::new(decl, 1 + arg_cost)
            }
            OPTIONAL_SELECT | "_?._" => {
                let field = match call.args.get(1).map(|a| &a.expr) {
                    Some(Expr::Literal(LiteralValue::String(s))) => s.inner().to_string(),
                    _ => String::new(),
                };
                let decl = self.field(&args[0].decl, &field);
                let decl = match decl.kind {
                    Kind::Optional(_) => decl,
                    _ => Decl::new(Kind::Optional(Arc::new(decl))),
                };
                Est::new(decl, SELECT_COST + arg_cost)
            }
            "size" => Est::new(Decl::new(Kind::Int), 1 + arg_cost),
            "contains" if matches!(target.as_ref().map(|t| &t.decl.kind), Some(Kind::String)) => {
                bool_of(
                    traversal(target_size)
                        .saturating_mul(traversal(size(0)))
                        .max(1),
                )
            }
            "startsWith" | "endsWith" => bool_of(traversal(size(0)).max(1)),
            "matches" | "find" | "findAll" => {
                let regex = size(usize::from(target.is_none())).div_ceil(4);
                let cost = traversal(target_size + 1).saturating_mul(regex.max(1));
                let decl = match name.as_str() {
                    "matches" => Decl::new(Kind::Bool),
                    "find" => Decl::string(target_size),
                    _ => Decl::list(Decl::string(target_size), target_size),
                };
                Est::new(decl, cost.saturating_add(arg_cost))
            }
            "lowerAscii"
            | "upperAscii"
            | "trim"
            | "strings.quote"
            | "jsonpatch.escapeKey"
            | "base64.encode"
            | "base64.decode" => {
                let source = match name.as_str() {
                    "strings.quote" | "base64.encode" | "base64.decode" => size(0),
                    _ => target_size,
                };
                let grown = match name.as_str() {
                    "strings.quote" | "jsonpatch.escapeKey" => {
                        source.saturating_mul(2).saturating_add(2)
                    }
                    "base64.encode" => source.saturating_mul(4).div_ceil(3).saturating_add(4),
                    _ => source,
                };
                Est::new(
                    Decl::string(grown),
                    traversal(source).saturating_add(arg_cost),
                )
            }
            "replace" => {
                let replacement = size(1).max(1);
                let grown = target_size
                    .saturating_mul(replacement)
                    .saturating_add(replacement);
                let cost = traversal(target_size).saturating_mul(traversal(size(0)).max(1));
                Est::new(Decl::string(grown), cost.saturating_add(arg_cost))
            }
            "split" => {
                let parts = Decl::list(Decl::string(target_size), target_size.saturating_add(1));
                Est::new(parts, traversal(target_size).saturating_add(arg_cost))
            }
            "join" => {
                let elems = match target.as_ref().map(|t| &t.decl.kind) {
                    Some(Kind::List(elem)) => elem.max,
                    _ => MAX_REQUEST_BYTES,
                };
                let total = target_size
                    .saturating_mul(elems.saturating_add(size(0)))
                    .min(u64::MAX / 2);
                Est::new(
                    Decl::string(total),
                    traversal(total).saturating_add(arg_cost),
                )
            }
            "format" => {
                let total = target_size.saturating_add(size(0).saturating_mul(MAX_REQUEST_BYTES));
                Est::new(
                    Decl::string(total),
                    traversal(target_size).saturating_add(arg_cost),
                )
            }
            "substring" | "charAt" => {
                Est::new(Decl::string(target_size), traversal(target_size) + arg_cost)
            }
            "indexOf" | "lastIndexOf" => {
                let cost = match target.as_ref().map(|t| &t.decl.kind) {
                    Some(Kind::String) => {
                        traversal(target_size).saturating_mul(traversal(size(0)).max(1))
                    }
                    _ => target_size,
                };
                Est::new(Decl::new(Kind::Int), cost.saturating_add(arg_cost))
            }
            "isSorted" | "sum" | "max" | "min" | "first" | "last" => {
                let elem = match target.as_ref().or(args.first()).map(|t| &t.decl.kind) {
                    Some(Kind::List(elem)) => (**elem).clone(),
                    _ => Decl::dyn_(),
                };
                let decl = if name == "isSorted" {
                    Decl::new(Kind::Bool)
                } else {
                    elem
                };
                let count = target.as_ref().map_or_else(
                    || args.iter().map(|a| a.decl.max.max(1)).sum(),
                    |t| t.decl.max,
                );
                Est::new(decl, count.saturating_add(arg_cost))
            }
            "reverse" | "sort" | "distinct" | "slice" | "flatten" => {
                let t = target.as_ref().map_or_else(Decl::dyn_, |t| t.decl.clone());
                let cost = if name == "distinct" {
                    t.max.saturating_mul(t.max)
                } else {
                    t.max
                };
                Est::new(t, cost.saturating_add(arg_cost))
            }
            "lists.range" => {
                let count = match call.args.first().map(|a| &a.expr) {
                    Some(Expr::Literal(LiteralValue::Int(n))) => {
                        u64::try_from(*n.inner()).unwrap_or(0)
                    }
                    _ => u64::MAX,
                };
                Est::new(
                    Decl::list(Decl::new(Kind::Int), count),
                    count.saturating_add(arg_cost),
                )
            }
            "sets.contains" | "sets.equivalent" | "sets.intersects" => {
                bool_of(size(0).saturating_mul(size(1)))
            }
            "string" | "int" | "uint" | "double" | "bytes" | "bool" | "duration" | "timestamp"
            | "dyn" => {
                let source = args.first().or(target.as_ref()).map_or(0, |a| a.decl.max);
                let kind = match name.as_str() {
                    "string" => Kind::String,
                    "int" => Kind::Int,
                    "uint" => Kind::Uint,
                    "double" => Kind::Double,
                    "bytes" => Kind::Bytes,
                    "bool" => Kind::Bool,
                    "duration" => Kind::Duration,
                    "timestamp" => Kind::Timestamp,
                    _ => args.first().map_or(Kind::Dyn, |a| a.decl.kind.clone()),
                };
                let grown = if name == "string" {
                    source.max(20)
                } else {
                    source
                };
                Est::new(
                    Decl::sized(kind, grown),
                    traversal(source).saturating_add(1 + arg_cost),
                )
            }
            "optional.of" | "optional.ofNonZeroValue" => {
                let inner = args.first().map_or_else(Decl::dyn_, |a| a.decl.clone());
                Est::new(Decl::new(Kind::Optional(Arc::new(inner))), 1 + arg_cost)
            }
            "optional.none" => Est::new(Decl::new(Kind::Optional(Arc::new(Decl::dyn_()))), 1),
            "value" | "orValue" => {
                let inner = match target.as_ref().map(|t| &t.decl.kind) {
                    Some(Kind::Optional(inner)) => (**inner).clone(),
                    _ => Decl::dyn_(),
                };
                let decl = match args.first() {
                    Some(other) => inner.union(&other.decl),
                    None => inner,
                };
                Est::new(decl, 1 + arg_cost)
            }
            "or" => Est::new(target.map_or_else(Decl::dyn_, |t| t.decl), 1 + arg_cost),
            _ => Est::new(
                result_of(&name, target_size),
                traversal(target_size).saturating_add(1 + arg_cost),
            ),
        }
    }

    /// Refuses functions the environment does not have, as cel-go's checker does.
    fn check_function(&mut self, name: &str) {
        if FUNCTIONS.contains(&name) {
            return;
        }
        let short = name.rsplit('.').next().unwrap_or(name);
        let offset = self.name_offset(short);
        if UNSUPPORTED.contains(&name) {
            self.error_at(
                offset,
                format!("function '{name}' is not supported by opkit-envtest's CEL interpreter"),
            );
        } else {
            self.error_at(
                offset,
                format!("undeclared reference to '{name}' (in container '')"),
            );
        }
    }

    /// String methods called on a value known not to be a string.
    fn check_receiver(&mut self, name: &str, receiver: &Decl, args: &[Est]) {
        const STRING_METHODS: [&str; 14] = [
            "charAt",
            "lowerAscii",
            "upperAscii",
            "replace",
            "split",
            "substring",
            "trim",
            "matches",
            "startsWith",
            "endsWith",
            "contains",
            "find",
            "findAll",
            "format",
        ];
        let known = !matches!(receiver.kind, Kind::String | Kind::Dyn | Kind::Never);
        if known && STRING_METHODS.contains(&name) {
            let offset = self.name_offset(name);
            let types: Vec<String> = args.iter().map(|a| a.decl.name()).collect();
            self.error_at(
                offset,
                format!(
                    "found no matching overload for '{name}' applied to '{}.({})'",
                    receiver.name(),
                    types.join(", ")
                ),
            );
        }
    }

    /// Operators between scalars of types no overload takes, as cel-go refuses them.
    fn check_operands(&mut self, op: &str, args: &[Est]) {
        let kinds: Vec<&Kind> = args.iter().map(|a| &a.decl.kind).collect();
        if kinds.iter().any(|k| matches!(k, Kind::Dyn | Kind::Never)) {
            return;
        }
        let numeric = |k: &Kind| matches!(k, Kind::Int | Kind::Uint | Kind::Double);
        let allowed = match (op, kinds.as_slice()) {
            ("_&&_" | "_||_", [a, b]) => **a == Kind::Bool && **b == Kind::Bool,
            ("!_", [a]) => **a == Kind::Bool,
            ("-_", [a]) => matches!(a, Kind::Int | Kind::Double | Kind::Duration),
            ("_==_" | "_!=_", [a, b]) => {
                std::mem::discriminant(*a) == std::mem::discriminant(*b)
                    || (numeric(a) && numeric(b))
                    || matches!(
                        (a, b),
                        (Kind::Null, _)
                            | (_, Kind::Null)
                            | (Kind::Optional(_), _)
                            | (_, Kind::Optional(_))
                    )
            }
            ("_<_" | "_<=_" | "_>_" | "_>=_", [a, b]) => {
                (numeric(a) && numeric(b))
                    || (a == b
                        && matches!(
                            a,
                            Kind::String
                                | Kind::Bytes
                                | Kind::Bool
                                | Kind::Timestamp
                                | Kind::Duration
                        ))
            }
            ("_+_", [a, b]) => {
                (std::mem::discriminant(*a) == std::mem::discriminant(*b)
                    && matches!(
                        a,
                        Kind::Int
                            | Kind::Uint
                            | Kind::Double
                            | Kind::String
                            | Kind::Bytes
                            | Kind::List(_)
                            | Kind::Duration
                    ))
                    || matches!(
                        (a, b),
                        (Kind::Timestamp, Kind::Duration) | (Kind::Duration, Kind::Timestamp)
                    )
            }
            ("_-_", [a, b]) => {
                (a == b
                    && matches!(
                        a,
                        Kind::Int | Kind::Uint | Kind::Double | Kind::Duration | Kind::Timestamp
                    ))
                    || matches!((a, b), (Kind::Timestamp, Kind::Duration))
            }
            ("_*_" | "_/_", [a, b]) => a == b && numeric(a),
            ("_%_", [a, b]) => a == b && matches!(a, Kind::Int | Kind::Uint),
            ("_[_]", [a, b]) => match a {
                Kind::List(_) => numeric(b),
                Kind::Map(_) | Kind::Object(_) => **b == Kind::String,
                _ => false,
            },
            ("_?_:_", [condition, ..]) => **condition == Kind::Bool,
            _ => true,
        };
        if allowed {
            return;
        }
        let symbol = match op {
            "_==_" => "==",
            "_!=_" => "!=",
            "_<_" => "<",
            "_<=_" => "<=",
            "_>_" => ">",
            "_>=_" => ">=",
            "_+_" => "+",
            "_-_" | "-_" => "-",
            "_*_" => "*",
            "_/_" => "/",
            "_&&_" => "&&",
            "_[_]" => "[",
            "_?_:_" => "?",
            "_||_" => "||",
            "!_" => "!",
            _ => "%",
        };
        let offset = self
            .source
            .find(&format!(" {symbol} "))
            .map(|i| i + 1)
            .or_else(|| self.source.find(symbol));
        let types: Vec<String> = args.iter().map(|a| a.decl.name()).collect();
        self.error_at(
            offset,
            format!(
                "found no matching overload for '{op}' applied to '({})'",
                types.join(", ")
            ),
        );
    }

    fn bind(&mut self, call: &CallExpr) -> Est {
        let [name, init, body] = call.args.as_slice() else {
            return Est::new(Decl::dyn_(), 1);
        };
        let init = self.expr(init);
        let Expr::Ident(name) = &name.expr else {
            return Est::new(Decl::dyn_(), init.cost);
        };
        self.scopes.push((name.clone(), init.decl));
        let body = self.expr(body);
        self.scopes.pop();
        Est::new(body.decl, init.cost.saturating_add(body.cost))
    }

    fn opt_map(&mut self, call: &CallExpr, name: &str) -> Est {
        let target = call.target.as_deref().map(|t| self.expr(t));
        let [var, body] = call.args.as_slice() else {
            return Est::new(Decl::dyn_(), 1);
        };
        let inner = match target.as_ref().map(|t| &t.decl.kind) {
            Some(Kind::Optional(inner)) => (**inner).clone(),
            _ => Decl::dyn_(),
        };
        let Expr::Ident(var) = &var.expr else {
            return Est::new(Decl::dyn_(), 1);
        };
        self.scopes.push((var.clone(), inner));
        let body = self.expr(body);
        self.scopes.pop();
        let decl = if name == "optMap" {
            Decl::new(Kind::Optional(Arc::new(body.decl)))
        } else {
            body.decl
        };
        let cost = target.map_or(0, |t| t.cost).saturating_add(body.cost);
        Est::new(decl, cost)
    }
}

fn literal_decl(literal: &LiteralValue) -> Decl {
    match literal {
        LiteralValue::Boolean(_) => Decl::new(Kind::Bool),
        LiteralValue::Bytes(b) => Decl::sized(Kind::Bytes, b.inner().len() as u64),
        LiteralValue::Double(_) => Decl::new(Kind::Double),
        LiteralValue::Int(_) => Decl::new(Kind::Int),
        LiteralValue::Null => Decl::new(Kind::Null),
        LiteralValue::String(s) => Decl::string(s.inner().chars().count() as u64),
        LiteralValue::UInt(_) => Decl::new(Kind::Uint),
    }
}

/// The result type of the library functions not costed specially.
fn result_of(name: &str, target_size: u64) -> Decl {
    let short = name.rsplit('.').next().unwrap_or(name);
    match short {
        "isURL"
        | "isIP"
        | "isIPv4"
        | "isIPv6"
        | "isCIDR"
        | "isCIDRv4"
        | "isCIDRv6"
        | "isQuantity"
        | "isSemver"
        | "isGreaterThan"
        | "isLessThan"
        | "isInteger"
        | "hasValue"
        | "isUnspecified"
        | "isLoopback"
        | "isLinkLocalMulticast"
        | "isLinkLocalUnicast"
        | "isGlobalUnicast"
        | "containsIP"
        | "containsCIDR"
        | "isCanonical"
        | "isInf"
        | "isNaN"
        | "isFinite" => Decl::new(Kind::Bool),
        "compareTo" | "major" | "minor" | "patch" | "prefixLength" | "family" | "asInteger"
        | "getFullYear" | "getMonth" | "getDayOfYear" | "getDayOfMonth" | "getDate"
        | "getDayOfWeek" | "getHours" | "getMinutes" | "getSeconds" | "getMilliseconds"
        | "bitAnd" | "bitOr" | "bitXor" | "bitNot" | "bitShiftLeft" | "bitShiftRight" => {
            Decl::new(Kind::Int)
        }
        "asApproximateFloat" | "sqrt" | "ceil" | "floor" | "round" | "trunc" => {
            Decl::new(Kind::Double)
        }
        "getScheme" | "getHost" | "getHostname" | "getPort" | "getEscapedPath" => {
            Decl::string(target_size)
        }
        "quantity" | "add" | "sub" => Decl::new(Kind::Opaque("kubernetes.Quantity")),
        "semver" => Decl::new(Kind::Opaque("kubernetes.Semver")),
        "url" => Decl::new(Kind::Opaque("kubernetes.URL")),
        "ip" => Decl::new(Kind::Opaque("net.IP")),
        "cidr" | "masked" => Decl::new(Kind::Opaque("net.CIDR")),
        _ => Decl::dyn_(),
    }
}
