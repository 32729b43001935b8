//! Label and field selectors, as list and watch requests carry them.
//!
//! The label selector parser follows apimachinery's `labels.Parse`,
//! including its error messages:

use serde_json::{Map, Value};

/// A selector string that could not be parsed, with apimachinery's message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Clone, Debug, PartialEq)]
struct Requirement {
    key: String,
    op: Op,
    values: Vec<String>,
}

impl Requirement {
    /// apimachinery's `NewRequirement`: validates the key, the values and their count.
    fn new(key: &str, op: Op, mut values: Vec<String>) -> Result<Self, SelectorError> {
        values.sort();
        values.dedup();
        let mut errors = Vec::new();
        if let Some(e) = qualified_name_errors(key) {
            errors.push(format!("key: Invalid value: {}: {e}", quote(key)));
        }
        let list = format!(
            "[]string{{{}}}",
            values
                .iter()
                .map(|v| quote(v))
                .collect::<Vec<_>>()
                .join(", ")
        );
        match op {
            Op::In | Op::NotIn if values.is_empty() => errors.push(format!(
                "values: Invalid value: {list}: for 'in', 'notin' operators, values set can't be empty"
            )),
            Op::Equals | Op::DoubleEquals | Op::NotEquals if values.len() != 1 => {
                errors.push(format!(
                    "values: Invalid value: {list}: exact-match compatibility requires one single value"
                ))
            }
            Op::Exists | Op::DoesNotExist if !values.is_empty() => errors.push(format!(
                "values: Invalid value: {list}: values set must be empty for exists and does not exist"
            )),
            Op::GreaterThan | Op::LessThan => {
                if values.len() != 1 {
                    errors.push(format!(
                        "values: Invalid value: {list}: for 'Gt', 'Lt' operators, exactly one value is required"
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errors.push(format!(
                            "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                            quote(v)
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            if let Some(e) = label_value_errors(v) {
                errors.push(format!(
                    "values[{i}][{key}]: Invalid value: {}: {e}",
                    quote(v)
                ));
            }
        }
        match errors.len() {
            0 => Ok(Self {
                key: key.to_string(),
                op,
                values,
            }),
            1 => Err(SelectorError(errors.remove(0))),
            _ => Err(SelectorError(format!("[{}]", errors.join(", ")))),
        }
    }

    fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let value = labels
            .and_then(|l| l.get(&self.key))
            .and_then(Value::as_str);
        let contained = value.is_some_and(|v| self.values.iter().any(|x| x == v));
        match self.op {
            Op::In | Op::Equals | Op::DoubleEquals => contained,
            Op::NotIn | Op::NotEquals => !contained,
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::GreaterThan | Op::LessThan => {
                let (Some(have), Some(want)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

/// Go's `%q` as the selector messages print values.
fn quote(s: &str) -> String {
    crate::schema::go_quote(s)
}

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// apimachinery's `IsQualifiedName`, joined with `; ` as the selector parser reports it.
fn qualified_name_errors(key: &str) -> Option<String> {
    let parts: Vec<&str> = key.split('/').collect();
    let mut errs = Vec::new();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else if !is_dns1123_subdomain(prefix) {
                errs.push("prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')".to_string());
            }
            name
        }
        _ => {
            return Some(format!(
                "a qualified name {QUALIFIED_NAME_MSG} (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{QUALIFIED_NAME_FMT}') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ));
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 bytes".to_string());
    }
    if !name.is_empty() && !is_name_part(name) {
        errs.push(format!(
            "name part {QUALIFIED_NAME_MSG} (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '{QUALIFIED_NAME_FMT}')"
        ));
    }
    (!errs.is_empty()).then(|| errs.join("; "))
}

/// apimachinery's `IsValidLabelValue`.
fn label_value_errors(v: &str) -> Option<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push("must be no more than 63 bytes".to_string());
    }
    if !v.is_empty() && !is_name_part(v) {
        errs.push("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string());
    }
    (!errs.is_empty()).then(|| errs.join("; "))
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Identifier(String),
    In,
    NotIn,
    DoesNotExist,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
    OpenPar,
    ClosedPar,
    Comma,
    End,
}

impl Token {
    fn literal(&self) -> &str {
        match self {
            Token::Identifier(s) => s,
            Token::In => "in",
            Token::NotIn => "notin",
            Token::DoesNotExist => "!",
            Token::Equals => "=",
            Token::DoubleEquals => "==",
            Token::NotEquals => "!=",
            Token::GreaterThan => ">",
            Token::LessThan => "<",
            Token::OpenPar => "(",
            Token::ClosedPar => ")",
            Token::Comma => ",",
            Token::End => "",
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn special_token(s: &str) -> Option<Token> {
    Some(match s {
        "!" => Token::DoesNotExist,
        "=" => Token::Equals,
        "==" => Token::DoubleEquals,
        "!=" => Token::NotEquals,
        ">" => Token::GreaterThan,
        "<" => Token::LessThan,
        "(" => Token::OpenPar,
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        _ => return None,
    })
}

/// apimachinery's selector lexer: the longest run of symbols that forms a token.
fn lex(input: &str) -> Vec<Token> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            i += 1;
        } else if is_special(c) {
            // Every single symbol is a token; take the longest run that still is one.
            let mut buffer = String::new();
            let mut last = (Token::Comma, i + 1);
            let mut j = i;
            while j < chars.len() && is_special(chars[j]) {
                buffer.push(chars[j]);
                j += 1;
                match special_token(&buffer) {
                    Some(t) => last = (t, j),
                    None => break,
                }
            }
            tokens.push(last.0);
            i = last.1;
        } else {
            let start = i;
            while i < chars.len() && !is_special(chars[i]) && !chars[i].is_whitespace() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            tokens.push(match word.as_str() {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier(word),
            });
        }
    }
    tokens.push(Token::End);
    tokens
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    /// In value position the keywords `in` and `notin` are plain identifiers.
    fn as_value(t: Token) -> Token {
        match t {
            Token::In => Token::Identifier("in".into()),
            Token::NotIn => Token::Identifier("notin".into()),
            other => other,
        }
    }

    fn lookahead(&self) -> Token {
        Self::as_value(self.tokens.get(self.pos).cloned().unwrap_or(Token::End))
    }

    fn consume(&mut self) -> Token {
        let t = self.tokens.get(self.pos).cloned().unwrap_or(Token::End);
        self.pos += 1;
        t
    }

    fn consume_value(&mut self) -> Token {
        Self::as_value(self.consume())
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            match self.lookahead() {
                Token::Identifier(_) | Token::DoesNotExist => {
                    let r = self.requirement().map_err(|e| {
                        SelectorError(format!("unable to parse requirement: {}", e.0))
                    })?;
                    requirements.push(r);
                    match self.consume_value() {
                        Token::End => return Ok(requirements),
                        Token::Comma => {
                            let next = self.lookahead();
                            if !matches!(next, Token::Identifier(_) | Token::DoesNotExist) {
                                return Err(SelectorError(format!(
                                    "found '{}', expected: identifier after ','",
                                    next.literal()
                                )));
                            }
                        }
                        other => {
                            return Err(SelectorError(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                other.literal()
                            )));
                        }
                    }
                }
                Token::End => return Ok(requirements),
                other => {
                    return Err(SelectorError(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        other.literal()
                    )));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let mut tok = self.consume_value();
        let negated = tok == Token::DoesNotExist;
        if negated {
            tok = self.consume_value();
        }
        let Token::Identifier(key) = tok else {
            return Err(SelectorError(format!(
                "found '{}', expected: identifier",
                tok.literal()
            )));
        };
        if let Some(e) = qualified_name_errors(&key) {
            return Err(SelectorError(format!(
                "<nil>: Invalid value: {}: {e}",
                quote(&key)
            )));
        }
        if matches!(self.lookahead(), Token::End | Token::Comma) {
            let op = if negated {
                Op::DoesNotExist
            } else {
                Op::Exists
            };
            return Requirement::new(&key, op, Vec::new());
        }
        let op = match self.consume() {
            Token::In => Op::In,
            Token::NotIn => Op::NotIn,
            Token::Equals => Op::Equals,
            Token::DoubleEquals => Op::DoubleEquals,
            Token::NotEquals => Op::NotEquals,
            Token::GreaterThan => Op::GreaterThan,
            Token::LessThan => Op::LessThan,
            other => {
                return Err(SelectorError(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    other.literal()
                )));
            }
        };
        let values = match op {
            Op::In | Op::NotIn => self.set_values()?,
            _ => self.exact_value()?,
        };
        Requirement::new(&key, op, values)
    }

    fn set_values(&mut self) -> Result<Vec<String>, SelectorError> {
        let tok = self.consume_value();
        if tok != Token::OpenPar {
            return Err(SelectorError(format!(
                "found '{}', expected: '('",
                tok.literal()
            )));
        }
        match self.lookahead() {
            Token::Identifier(_) | Token::Comma => {
                let values = self.identifiers()?;
                let close = self.consume_value();
                if close != Token::ClosedPar {
                    return Err(SelectorError(format!(
                        "found '{}', expected: ')'",
                        close.literal()
                    )));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume();
                Ok(vec![String::new()])
            }
            other => Err(SelectorError(format!(
                "found '{}', expected: ',', ')' or identifier",
                other.literal()
            ))),
        }
    }

    fn identifiers(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut values = Vec::new();
        loop {
            match self.consume_value() {
                Token::Identifier(v) => {
                    values.push(v);
                    match self.lookahead() {
                        Token::Comma => {}
                        Token::ClosedPar => return Ok(values),
                        other => {
                            return Err(SelectorError(format!(
                                "found '{}', expected: ',' or ')'",
                                other.literal()
                            )));
                        }
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    match self.lookahead() {
                        Token::ClosedPar => {
                            values.push(String::new());
                            return Ok(values);
                        }
                        Token::Comma => {
                            self.consume();
                            values.push(String::new());
                        }
                        _ => {}
                    }
                }
                other => {
                    return Err(SelectorError(format!(
                        "found '{}', expected: ',', or identifier",
                        other.literal()
                    )));
                }
            }
        }
    }

    fn exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        if matches!(self.lookahead(), Token::End | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        match self.consume_value() {
            Token::Identifier(v) => Ok(vec![v]),
            other => Err(SelectorError(format!(
                "found '{}', expected: identifier",
                other.literal()
            ))),
        }
    }
}

/// A parsed label selector (`app=web,tier in (a,b),!canary`).
///
/// The default selector matches everything.
#[derive(Clone, Debug, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter syntax.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let tokens = lex(s);
        let requirements = Parser { tokens, pos: 0 }.parse()?;
        Ok(Self {
            requirements,
            nothing: false,
        })
    }

    /// Builds a selector from a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`).
    ///
    /// `null` selects nothing and `{}` selects everything, as in apimachinery.
    pub fn from_object(selector: &Value) -> Result<Self, SelectorError> {
        let Some(obj) = selector.as_object() else {
            return Ok(Self {
                requirements: Vec::new(),
                nothing: selector.is_null(),
            });
        };
        let mut requirements = Vec::new();
        if let Some(labels) = obj.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in labels {
                let value = v.as_str().unwrap_or_default().to_string();
                requirements.push(Requirement::new(k, Op::Equals, vec![value])?);
            }
        }
        let expressions = obj.get("matchExpressions").and_then(Value::as_array);
        for expr in expressions.into_iter().flatten() {
            let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
            let operator = expr
                .get("operator")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let op = match operator {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => {
                    return Err(SelectorError(format!(
                        "{} is not a valid label selector operator",
                        quote(other)
                    )));
                }
            };
            let values: Vec<String> = expr
                .get("values")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            requirements.push(Requirement::new(key, op, values)?);
        }
        Ok(Self {
            requirements,
            nothing: false,
        })
    }

    /// Whether an object's `metadata.labels` (absent counts as empty) match.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }
}

#[derive(Clone, Debug, PartialEq)]
struct FieldTerm {
    path: String,
    value: String,
    equal: bool,
}

/// A parsed field selector (`metadata.name=x,metadata.namespace!=y`).
///
/// Any dotted path of the object can be selected on; a missing field
/// compares as the empty string, numbers and booleans as their JSON text.
#[derive(Clone, Debug, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter syntax (`\` escapes `,`, `=` and `!`).
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        for part in split_unescaped(s, ',') {
            if part.is_empty() {
                continue;
            }
            let term = ["!=", "==", "="].iter().find_map(|op| {
                find_unescaped(&part, op).map(|at| FieldTerm {
                    path: unescape(&part[..at]),
                    value: unescape(&part[at + op.len()..]),
                    equal: *op != "!=",
                })
            });
            match term {
                Some(t) => terms.push(t),
                None => {
                    return Err(SelectorError(format!(
                        "invalid selector: '{s}'; can't understand '{part}'"
                    )));
                }
            }
        }
        Ok(Self { terms })
    }

    /// Whether the values `value` gives for each term's label satisfy them.
    pub fn matches_with(&self, value: impl Fn(&str) -> String) -> bool {
        self.terms
            .iter()
            .all(|t| (value(&t.path) == t.value) == t.equal)
    }

    /// The field labels the selector names.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.path.as_str())
    }
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            current.push('\\');
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    if escaped {
        current.push('\\');
    }
    parts.push(current);
    parts
}

fn find_unescaped(s: &str, op: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if s[i..].starts_with(op) {
            return Some(i);
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Fields read by their dotted path, absent ones as `""`.
    fn field_matches(selector: &FieldSelector, object: &Value) -> bool {
        selector.matches_with(|path| {
            path.split('.')
                .try_fold(object, |v, key| v.get(key))
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .unwrap_or_default()
        })
    }

    #[test]
    fn label_and_field_selectors_together() {
        let sel = LabelSelector::parse("app=web,tier in (front,back),!canary").unwrap_or_default();
        assert!(sel.matches(Some(&labels(json!({"app": "web", "tier": "front"})))));
        let err = LabelSelector::parse("app in front")
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to parse requirement: found 'front', expected: '('"
        );
        let fields =
            FieldSelector::parse("metadata.name=web,status.phase!=Running").unwrap_or_default();
        assert!(field_matches(
            &fields,
            &json!({"metadata": {"name": "web"}, "status": {"phase": "Pending"}})
        ));
    }

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn sel(s: &str) -> LabelSelector {
        match LabelSelector::parse(s) {
            Ok(sel) => sel,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(sel) => panic!("{s} parsed: {sel:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn equality_and_set_operators() {
        let l = labels(json!({"app": "web", "tier": "front", "version": "3"}));
        for yes in [
            "",
            "app=web",
            "app==web",
            "app!=db",
            "missing!=x",
            "app in (web,db)",
            "tier notin (back)",
            "missing notin (x)",
            "app",
            "!missing",
            "app=web, tier in (front)",
            "version>2",
            "version<4",
            "app in (web), !canary",
        ] {
            assert!(sel(yes).matches(Some(&l)), "{yes}");
        }
        for no in [
            "app=db",
            "app!=web",
            "app in (db)",
            "app notin (web)",
            "missing",
            "!app",
            "missing=x",
            "version>3",
            "app>1",
        ] {
            assert!(!sel(no).matches(Some(&l)), "{no}");
        }
        assert!(sel("!app").matches(None));
        assert!(!sel("app").matches(None));
        assert!(sel("app=").matches(Some(&labels(json!({"app": ""})))));
        assert!(sel("app in ()").matches(Some(&labels(json!({"app": ""})))));
    }

    #[test]
    fn parse_errors_match_apimachinery() {
        assert_eq!(
            err("app in front"),
            "unable to parse requirement: found 'front', expected: '('"
        );
        assert_eq!(
            err("app web"),
            "unable to parse requirement: found 'web', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            err("app=web x"),
            "found 'x', expected: ',' or 'end of string'"
        );
        assert_eq!(err("app=web,"), "found '', expected: identifier after ','");
        assert_eq!(
            err("=web"),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("app in (a b)"),
            "unable to parse requirement: found 'b', expected: ',' or ')'"
        );
        assert_eq!(
            err("app=-bad"),
            "unable to parse requirement: values[0][app]: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        assert!(err("Bad_Prefix/x=y").starts_with("unable to parse requirement: <nil>: Invalid value: \"Bad_Prefix/x\": prefix part a lowercase RFC 1123 subdomain"));
        assert_eq!(
            err("v>x"),
            "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn from_object_follows_label_selector_as_selector() {
        let s = LabelSelector::from_object(&json!({"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "canary", "operator": "DoesNotExist"}]}))
        .unwrap_or_default();
        assert!(s.matches(Some(&labels(json!({"app": "web", "tier": "back"})))));
        assert!(!s.matches(Some(&labels(
            json!({"app": "web", "tier": "back", "canary": "1"})
        ))));
        assert!(!s.matches(Some(&labels(json!({"app": "web"})))));
        let everything = LabelSelector::from_object(&json!({})).unwrap_or_default();
        assert!(everything.matches(None) && everything.matches(Some(&labels(json!({"a": "b"})))));
        let nothing = LabelSelector::from_object(&Value::Null).unwrap_or_default();
        assert!(!nothing.matches(None));
        let bad = LabelSelector::from_object(
            &json!({"matchExpressions": [{"key": "a", "operator": "Gt"}]}),
        );
        assert_eq!(
            bad.map(|_| ()).unwrap_err().to_string(),
            "\"Gt\" is not a valid label selector operator"
        );
        let empty_in = LabelSelector::from_object(
            &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
        );
        assert_eq!(
            empty_in.map(|_| ()).unwrap_err().to_string(),
            "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"
        );
    }

    #[test]
    fn field_selectors() {
        let pod = json!({"metadata": {"name": "web-1", "namespace": "prod"},
            "spec": {"nodeName": "n1", "replicas": 3}, "status": {"phase": "Running"}});
        let event = json!({"involvedObject": {"name": "web", "kind": "Deployment"}});
        let ok = |s: &str, o: &Value| {
            FieldSelector::parse(s)
                .map(|f| field_matches(&f, o))
                .unwrap_or(false)
        };
        assert!(ok("metadata.name=web-1", &pod));
        assert!(ok("metadata.name==web-1,metadata.namespace!=default", &pod));
        assert!(ok("status.phase=Running,spec.nodeName=n1", &pod));
        assert!(ok("spec.replicas=3", &pod));
        assert!(ok("spec.missing=", &pod));
        assert!(!ok("status.phase!=Running", &pod));
        assert!(ok(
            "involvedObject.name=web,involvedObject.kind=Deployment",
            &event
        ));
        assert!(ok("", &pod));
        assert_eq!(
            FieldSelector::parse("metadata.name")
                .map(|_| ())
                .unwrap_err()
                .to_string(),
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        let escaped = FieldSelector::parse(r"metadata.name=a\,b").unwrap_or_default();
        assert!(field_matches(
            &escaped,
            &json!({"metadata": {"name": "a,b"}})
        ));
        assert!(!field_matches(
            &escaped,
            &json!({"metadata": {"name": "a"}})
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_selectors_never_panic(s in "[a-z=!(), /._\\-<>\\\\]{0,24}") {
            if let Ok(sel) = LabelSelector::parse(&s) {
                let _ = sel.matches(Some(&labels(json!({"a": "b"}))));
            }
            if let Ok(f) = FieldSelector::parse(&s) {
                let _ = field_matches(&f, &json!({"a": {"b": 1}}));
            }
        }

        #[test]
        fn equality_round_trips(key in "[a-z][a-z0-9]{0,8}", value in "[a-z0-9]{0,8}") {
            let s = sel(&format!("{key}={value}"));
            let same = labels(json!({key.clone(): value.clone()}));
            let other = labels(json!({key: format!("{value}x")}));
            prop_assert!(s.matches(Some(&same)));
            prop_assert!(!s.matches(Some(&other)));
        }
    }
}
