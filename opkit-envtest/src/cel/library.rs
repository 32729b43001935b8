//! The functions rules can call: CEL's standard ones, the Kubernetes
//! libraries (kube-cel) and the few macros the interpreter lacks, added as
//! registered functions.

use kube::core::cel::KubeCelExt;
use kube::core::cel::cel::common::ast::Expr;
use kube::core::cel::cel::extractors::{Arguments, This};
use kube::core::cel::cel::objects::{Key, OptionalValue};
use kube::core::cel::cel::{Context, ExecutionError, FunctionContext, Value};
use regex::Regex;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Global functions rules may call, beyond operators.
pub(crate) const FUNCTIONS: &[&str] = &[
    // CEL's standard functions.
    "size",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "duration",
    "timestamp",
    "dyn",
    "matches",
    "contains",
    "startsWith",
    "endsWith",
    "max",
    "min",
    // Optional values.
    "optional.of",
    "optional.none",
    "optional.ofNonZeroValue",
    "value",
    "hasValue",
    "or",
    "orValue",
    "optMap",
    "optFlatMap",
    // Timestamps and durations.
    "getFullYear",
    "getMonth",
    "getDayOfYear",
    "getDayOfMonth",
    "getDate",
    "getDayOfWeek",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    // cel-go's extension libraries: strings, lists, sets, math, encoders, bindings.
    "charAt",
    "indexOf",
    "lastIndexOf",
    "lowerAscii",
    "upperAscii",
    "replace",
    "split",
    "substring",
    "trim",
    "join",
    "format",
    "strings.quote",
    "reverse",
    "distinct",
    "flatten",
    "slice",
    "sort",
    "first",
    "last",
    "lists.range",
    "sets.contains",
    "sets.equivalent",
    "sets.intersects",
    "math.greatest",
    "math.least",
    "math.abs",
    "math.ceil",
    "math.floor",
    "math.round",
    "math.trunc",
    "math.sign",
    "math.sqrt",
    "math.isInf",
    "math.isNaN",
    "math.isFinite",
    "math.bitAnd",
    "math.bitOr",
    "math.bitXor",
    "math.bitNot",
    "math.bitShiftLeft",
    "math.bitShiftRight",
    "base64.encode",
    "base64.decode",
    "cel.bind",
    // The Kubernetes libraries.
    "isSorted",
    "sum",
    "find",
    "findAll",
    "url",
    "isURL",
    "getScheme",
    "getHost",
    "getHostname",
    "getPort",
    "getEscapedPath",
    "getQuery",
    "ip",
    "isIP",
    "ip.isCanonical",
    "isIPv4",
    "isIPv6",
    "family",
    "isUnspecified",
    "isLoopback",
    "isLinkLocalMulticast",
    "isLinkLocalUnicast",
    "isGlobalUnicast",
    "cidr",
    "isCIDR",
    "isCIDRv4",
    "isCIDRv6",
    "containsIP",
    "containsCIDR",
    "prefixLength",
    "masked",
    "quantity",
    "isQuantity",
    "sign",
    "isInteger",
    "asInteger",
    "asApproximateFloat",
    "add",
    "sub",
    "compareTo",
    "isGreaterThan",
    "isLessThan",
    "semver",
    "isSemver",
    "major",
    "minor",
    "patch",
    "jsonpatch.escapeKey",
    "format.dns1123Label",
    "format.dns1123Subdomain",
    "format.dns1035Label",
    "format.qualifiedName",
    "format.dns1123LabelPrefix",
    "format.dns1123SubdomainPrefix",
    "format.dns1035LabelPrefix",
    "format.labelValue",
    "format.uri",
    "format.uuid",
    "format.byte",
    "format.date",
    "format.datetime",
    "format.named",
    "validate",
];

/// Functions of Kubernetes' CEL environment this interpreter cannot run.
pub(crate) const UNSUPPORTED: &[&str] = &[
    "type",
    "transformList",
    "transformMap",
    "transformMapEntry",
    "sortBy",
];

/// The name a call to `optional.none()`-style functions takes, when the
/// target is a namespace rather than a value.
pub(crate) const NAMESPACES: &[&str] = &[
    "optional",
    "strings",
    "lists",
    "sets",
    "math",
    "base64",
    "cel",
    "ip",
    "jsonpatch",
    "format",
];

/// The function the parser's `x.?field` becomes (the interpreter's own
/// optional selection fails on absent fields).
pub(crate) const OPTIONAL_SELECT: &str = "@optionalSelect";

thread_local! {
    static BASE: Context<'static> = base();
}

fn base() -> Context<'static> {
    let mut ctx = Context::default().with_all();
    ctx.add_function("dyn", identity);
    ctx.add_function("cel.bind", bind);
    ctx.add_function("optMap", opt_map);
    ctx.add_function("optFlatMap", opt_flat_map);
    ctx.add_function(OPTIONAL_SELECT, optional_select);
    ctx.add_function("matches", matches);
    ctx.add_function("find", find);
    ctx.add_function("findAll", find_all);
    ctx
}

thread_local! {
    /// Compiled patterns: rules match the same few patterns on every write.
    static REGEXES: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// Runs `f` with the compiled `pattern`, compiling it once per thread.
fn with_regex<R>(pattern: &str, f: impl FnOnce(&Regex) -> R) -> Result<R, regex::Error> {
    REGEXES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(re) = cache.get(pattern) {
            return Ok(f(re));
        }
        let re = Regex::new(pattern)?;
        // Bounded: patterns built from object data must not grow it forever.
        if cache.len() >= 256 {
            cache.clear();
        }
        let result = f(&re);
        cache.insert(pattern.to_string(), re);
        Ok(result)
    })
}

/// `s.matches(re)`.
fn matches(
    ftx: &FunctionContext,
    This(this): This<Arc<String>>,
    pattern: Arc<String>,
) -> Result<bool, ExecutionError> {
    with_regex(&pattern, |re| re.is_match(&this))
        .map_err(|e| ftx.error(format!("'{pattern}' not a valid regex:\n{e}")))
}

/// `s.find(re)`: the first match, or `''`.
fn find(This(this): This<Arc<String>>, pattern: Arc<String>) -> Result<Value, ExecutionError> {
    with_regex(&pattern, |re| {
        let found = re.find(&this).map(|m| m.as_str()).unwrap_or_default();
        Value::String(Arc::new(found.to_string()))
    })
    .map_err(|e| ExecutionError::function_error("find", format!("invalid regex: {e}")))
}

/// `s.findAll(re)` and `s.findAll(re, limit)`: the matches, at most `limit` when it is not negative.
fn find_all(
    This(this): This<Arc<String>>,
    Arguments(args): Arguments,
) -> Result<Value, ExecutionError> {
    let Some(Value::String(pattern)) = args.first() else {
        return Err(ExecutionError::function_error(
            "findAll",
            "expected string pattern",
        ));
    };
    let limit = match args.get(1) {
        Some(Value::Int(n)) => usize::try_from(*n).unwrap_or(usize::MAX),
        _ => usize::MAX,
    };
    with_regex(pattern, |re| {
        let found: Vec<Value> = re
            .find_iter(&this)
            .take(limit)
            .map(|m| Value::String(Arc::new(m.as_str().to_string())))
            .collect();
        Value::List(Arc::new(found))
    })
    .map_err(|e| ExecutionError::function_error("findAll", format!("invalid regex: {e}")))
}

/// Runs `f` with the shared context every evaluation on this thread starts from.
pub(crate) fn with_base<R>(f: impl FnOnce(&Context<'_>) -> R) -> R {
    BASE.with(|base| f(base))
}

/// `dyn(x)`: only tells the type checker to stop checking `x`.
fn identity(_: &FunctionContext, This(value): This<Value>) -> Result<Value, ExecutionError> {
    Ok(value)
}

fn ident(ftx: &FunctionContext, expr: &Expr) -> Result<String, ExecutionError> {
    match expr {
        Expr::Ident(name) => Ok(name.clone()),
        _ => Err(ftx.error("expected an identifier")),
    }
}

/// `cel.bind(name, init, expr)`: `expr` with `name` bound to `init`.
fn bind(ftx: &FunctionContext) -> Result<Value, ExecutionError> {
    let [name, init, body] = ftx.args else {
        return Err(ExecutionError::invalid_argument_count(3, ftx.args.len()));
    };
    let name = ident(ftx, &name.expr)?;
    let value = ftx.ptx.resolve(init)?;
    let mut scope = ftx.ptx.new_inner_scope();
    scope.add_variable_from_value(name, value);
    scope.resolve(body)
}

fn optional(this: &Value) -> Result<&OptionalValue, ExecutionError> {
    this.try_into()
}

/// The value of `expr` with `name` bound to the optional's value, if any.
fn map_present(ftx: &FunctionContext, present: &Value) -> Result<Value, ExecutionError> {
    let [name, body] = ftx.args else {
        return Err(ExecutionError::invalid_argument_count(2, ftx.args.len()));
    };
    let name = ident(ftx, &name.expr)?;
    let mut scope = ftx.ptx.new_inner_scope();
    scope.add_variable_from_value(name, present.clone());
    scope.resolve(body)
}

/// `opt.optMap(x, expr)`: `optional.of(expr)` with `x` the value, or none.
fn opt_map(ftx: &FunctionContext, This(this): This<Value>) -> Result<Value, ExecutionError> {
    match optional(&this)?.value() {
        None => Ok(this.clone()),
        Some(present) => {
            let mapped = map_present(ftx, present)?;
            Ok(Value::Opaque(Arc::new(OptionalValue::of(mapped))))
        }
    }
}

/// `opt.optFlatMap(x, expr)`: `expr` (an optional) with `x` the value, or none.
fn opt_flat_map(ftx: &FunctionContext, This(this): This<Value>) -> Result<Value, ExecutionError> {
    match optional(&this)?.value() {
        None => Ok(this.clone()),
        Some(present) => map_present(ftx, present),
    }
}

/// `x.?field`: the field as an optional, none when absent.
fn optional_select(operand: Value, field: Arc<String>) -> Result<Value, ExecutionError> {
    let none = || Value::Opaque(Arc::new(OptionalValue::none()));
    let target = match &operand {
        Value::Opaque(_) => match optional(&operand)?.value() {
            Some(inner) => inner.clone(),
            None => return Ok(none()),
        },
        other => other.clone(),
    };
    match target {
        Value::Map(map) => Ok(map
            .map
            .get(&Key::String(field))
            .map(|v| Value::Opaque(Arc::new(OptionalValue::of(v.clone()))))
            .unwrap_or_else(none)),
        _ => Err(ExecutionError::NoSuchOverload),
    }
}
