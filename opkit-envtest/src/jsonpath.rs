//! The JSONPath subset that printer columns and the scale subresource use:
//! fields (`.a.b`, `['a.b/c']`), indices (`[0]`, `[-1]`), wildcards
//! (`[*]`, `.*`) and filters (`[?(@.type=="Ready")]`, `==` and `!=`), with or
//! without kubectl's surrounding braces (`{.spec.replicas}`).

use serde_json::Value;

/// Evaluates a printer-column style JSONPath and returns the matches, in
/// document order; an expression outside the subset matches nothing.
pub fn evaluate<'a>(object: &'a Value, path: &str) -> Vec<&'a Value> {
    let trimmed = path.trim();
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(trimmed);
    let Some(steps) = parse(inner) else {
        return Vec::new();
    };
    let mut current = vec![object];
    for step in &steps {
        current = current.into_iter().flat_map(|v| step.apply(v)).collect();
    }
    current
}

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    Wildcard,
    Filter {
        path: Vec<Step>,
        negate: bool,
        literal: Value,
    },
}

impl Step {
    fn apply<'a>(&self, value: &'a Value) -> Vec<&'a Value> {
        match self {
            Step::Field(name) => value.get(name.as_str()).into_iter().collect(),
            Step::Index(i) => {
                let Some(items) = value.as_array() else {
                    return Vec::new();
                };
                let len = items.len() as i64;
                let at = if *i < 0 { len + i } else { *i };
                usize::try_from(at)
                    .ok()
                    .and_then(|at| items.get(at))
                    .into_iter()
                    .collect()
            }
            Step::Wildcard => match value {
                Value::Array(items) => items.iter().collect(),
                Value::Object(map) => map.values().collect(),
                _ => Vec::new(),
            },
            Step::Filter {
                path,
                negate,
                literal,
            } => {
                let Some(items) = value.as_array() else {
                    return Vec::new();
                };
                items
                    .iter()
                    .filter(|item| {
                        let mut found = vec![*item];
                        for step in path {
                            found = found.into_iter().flat_map(|v| step.apply(v)).collect();
                        }
                        let equal = found.first().is_some_and(|v| loosely_equal(v, literal));
                        equal != *negate
                    })
                    .collect()
            }
        }
    }
}

/// Numbers compare by value (`1` equals `1.0`), everything else exactly.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn parse(input: &str) -> Option<Vec<Step>> {
    let mut parser = Parser {
        chars: input.chars().collect(),
        pos: 0,
        depth: 0,
    };
    let steps = parser.steps(false)?;
    (parser.pos == parser.chars.len()).then_some(steps)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    /// Filters inside filters; bounded so a hostile path cannot exhaust the stack.
    depth: usize,
}

const MAX_FILTER_DEPTH: usize = 8;

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Steps until the end, or (inside a filter) until an operator or `)`.
    fn steps(&mut self, in_filter: bool) -> Option<Vec<Step>> {
        let mut steps = Vec::new();
        // `$` and `@` name the root and the current item: nothing to do.
        if !self.eat('$') && in_filter {
            self.eat('@');
        }
        while let Some(c) = self.peek() {
            match c {
                '.' => {
                    self.pos += 1;
                    if self.eat('*') {
                        steps.push(Step::Wildcard);
                    } else {
                        let name = self.identifier();
                        if name.is_empty() {
                            // A lone `.` is the current object.
                            if self.peek().is_none() && steps.is_empty() {
                                continue;
                            }
                            if self.peek() != Some('[') {
                                return None;
                            }
                        } else {
                            steps.push(Step::Field(name));
                        }
                    }
                }
                '[' => {
                    self.pos += 1;
                    steps.push(self.bracket()?);
                    if !self.eat(']') {
                        return None;
                    }
                }
                _ if in_filter => break,
                _ => return None,
            }
        }
        Some(steps)
    }

    fn identifier(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn bracket(&mut self) -> Option<Step> {
        match self.peek()? {
            '*' => {
                self.pos += 1;
                Some(Step::Wildcard)
            }
            '\'' | '"' => Some(Step::Field(self.quoted()?)),
            '?' => {
                self.pos += 1;
                if !self.eat('(') {
                    return None;
                }
                if self.depth == MAX_FILTER_DEPTH {
                    return None;
                }
                self.depth += 1;
                let path = self.steps(true)?;
                self.depth -= 1;
                self.skip_spaces();
                let negate = if self.eat('=') {
                    self.eat('=');
                    false
                } else if self.eat('!') && self.eat('=') {
                    true
                } else {
                    return None;
                };
                self.skip_spaces();
                let literal = self.literal()?;
                self.skip_spaces();
                if !self.eat(')') {
                    return None;
                }
                Some(Step::Filter {
                    path,
                    negate,
                    literal,
                })
            }
            _ => {
                let start = self.pos;
                self.eat('-');
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                let digits: String = self.chars[start..self.pos].iter().collect();
                digits.parse().ok().map(Step::Index)
            }
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn quoted(&mut self) -> Option<String> {
        let quote = self.peek()?;
        self.pos += 1;
        let start = self.pos;
        while self.peek()? != quote {
            self.pos += 1;
        }
        let text = self.chars[start..self.pos].iter().collect();
        self.pos += 1;
        Some(text)
    }

    fn literal(&mut self) -> Option<Value> {
        match self.peek()? {
            '\'' | '"' => self.quoted().map(Value::String),
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != ')' && !c.is_whitespace()) {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                serde_json::from_str(&word).ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_select_by_a_sibling_field() {
        let pod = json!({"status": {"conditions": [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "False"},
        ]}});
        let ready = evaluate(&pod, r#".status.conditions[?(@.type=="Ready")].status"#);
        assert_eq!(ready, vec!["False"]);
    }

    fn sample() -> Value {
        json!({
            "metadata": {"name": "web", "annotations": {"example.com/owner": "team-a"}},
            "spec": {"replicas": 3, "containers": [
                {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
                {"name": "sidecar", "image": "envoy:1"},
            ]},
            "status": {"conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Ready", "status": "False", "count": 2},
            ]},
        })
    }

    #[test]
    fn fields_and_braces() {
        let obj = sample();
        assert_eq!(evaluate(&obj, ".spec.replicas"), vec![&json!(3)]);
        assert_eq!(evaluate(&obj, "{.metadata.name}"), vec!["web"]);
        assert_eq!(evaluate(&obj, "$.metadata.name"), vec!["web"]);
        assert!(evaluate(&obj, ".spec.missing").is_empty());
        assert_eq!(evaluate(&obj, "."), vec![&obj]);
    }

    #[test]
    fn quoted_keys_with_dots() {
        let obj = sample();
        assert_eq!(
            evaluate(&obj, ".metadata.annotations['example.com/owner']"),
            vec!["team-a"]
        );
        assert_eq!(
            evaluate(&obj, r#".metadata.annotations["example.com/owner"]"#),
            vec!["team-a"]
        );
    }

    #[test]
    fn indices_and_wildcards() {
        let obj = sample();
        assert_eq!(evaluate(&obj, ".spec.containers[0].name"), vec!["app"]);
        assert_eq!(evaluate(&obj, ".spec.containers[-1].name"), vec!["sidecar"]);
        assert!(evaluate(&obj, ".spec.containers[5].name").is_empty());
        assert_eq!(
            evaluate(&obj, ".spec.containers[*].image"),
            vec!["nginx:1.27", "envoy:1"]
        );
        assert_eq!(
            evaluate(&obj, ".spec.containers[*].ports[*].containerPort"),
            vec![&json!(80)]
        );
    }

    #[test]
    fn filters() {
        let obj = sample();
        assert_eq!(
            evaluate(&obj, r#".status.conditions[?(@.type=="Ready")].status"#),
            vec!["False"]
        );
        assert_eq!(
            evaluate(&obj, ".status.conditions[?(@.type == 'Available')].status"),
            vec!["True"]
        );
        assert_eq!(
            evaluate(&obj, r#".status.conditions[?(@.type!="Ready")].type"#),
            vec!["Available"]
        );
        assert_eq!(
            evaluate(&obj, ".status.conditions[?(@.count==2)].type"),
            vec!["Ready"]
        );
    }

    #[test]
    fn malformed_paths_match_nothing() {
        let obj = sample();
        for bad in [
            ".spec[",
            ".spec.containers[?(@.name)]",
            "spec.replicas",
            ".spec..replicas",
            "[?(@.a==",
            ".a['unterminated",
            &format!(".a{}", "[?(@.b".repeat(100_000)),
        ] {
            assert!(evaluate(&obj, bad).is_empty(), "{bad}");
        }
    }
}
