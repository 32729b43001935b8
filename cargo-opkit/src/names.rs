//! The names a scaffold is built from, checked before anything is written: the project's, the
//! API group's, the version's and the kind's, with the API server's own rules and wording where
//! it has them.

use heck::ToSnakeCase;

use crate::error::Error;

/// The longest project name: the Services `NAME-metrics` and `NAME-webhook` are DNS labels (63
/// characters at most).
const MAX_PROJECT: usize = 55;

/// Names a project may not take: Rust's keywords and reserved crate names, and the crates the
/// project depends on (its library would shadow them).
const RESERVED: &[&str] = &[
    "test",
    "std",
    "core",
    "alloc",
    "proc-macro",
    "self",
    "crate",
    "super",
    "opkit",
    "opkit-envtest",
    "opkit-derive",
    "kube",
    "k8s-openapi",
    "schemars",
    "serde",
    "serde-json",
    "tokio",
];

/// Rust's keywords, strict and reserved (2024 edition): identifiers that need `r#`.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Names the generated code imports from opkit (`opkit::prelude`, `opkit::k8s`): a kind named
/// like one of them would shadow it.
const IMPORTED: &[&str] = &[
    "Action",
    "Api",
    "Client",
    "Condition",
    "Context",
    "CustomResource",
    "CustomResourceExt",
    "Deserialize",
    "Duration",
    "Ensure",
    "Ensured",
    "EventType",
    "JsonSchema",
    "ObjectMeta",
    "Operator",
    "Reconcile",
    "Resource",
    "ResourceExt",
    "Serialize",
];

const DNS_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric \
     characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', \
     or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

const DNS_SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
     alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character \
     (e.g. 'example.com', regex used for validation is \
     '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn invalid(what: &'static str, value: &str, reason: impl Into<String>) -> Error {
    Error::InvalidName {
        what,
        value: value.to_owned(),
        reason: reason.into(),
    }
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Checks a project name: a package name that is also the operator's name in the cluster (its
/// ServiceAccount, its namespace `NAME-system`, its Services `NAME-metrics` and `NAME-webhook`).
pub(crate) fn project(name: &str) -> Result<(), Error> {
    if !is_dns_label(name) {
        return Err(invalid("project name", name, DNS_LABEL));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(invalid(
            "project name",
            name,
            "must start with a letter (a package name cannot start with a digit)",
        ));
    }
    if name.len() > MAX_PROJECT {
        return Err(invalid(
            "project name",
            name,
            format!(
                "must be no more than {MAX_PROJECT} characters, so that its Services \
                 NAME-metrics and NAME-webhook are valid names"
            ),
        ));
    }
    let crate_like = name.replace('_', "-");
    if RESERVED.contains(&crate_like.as_str()) || KEYWORDS.contains(&name) {
        return Err(invalid(
            "project name",
            name,
            "is reserved: a Rust keyword or the name of a crate the project depends on",
        ));
    }
    Ok(())
}

/// The API group from `--group` and `--domain`: `GROUP.DOMAIN`, or `GROUP` alone, checked as
/// the API server checks a CRD's group.
pub(crate) fn group(group: &str, domain: Option<&str>) -> Result<String, Error> {
    if let Some(domain) = domain
        && !is_dns_subdomain(domain)
    {
        return Err(invalid("domain", domain, DNS_SUBDOMAIN));
    }
    if !is_dns_subdomain(group) {
        return Err(invalid("group", group, DNS_SUBDOMAIN));
    }
    let full = match domain {
        Some(domain) => format!("{group}.{domain}"),
        None => group.to_owned(),
    };
    if !is_dns_subdomain(&full) {
        return Err(invalid("group", &full, DNS_SUBDOMAIN));
    }
    if !full.contains('.') {
        return Err(invalid(
            "group",
            &full,
            "should be a domain with at least one dot (add --domain, e.g. --domain example.com)",
        ));
    }
    Ok(full)
}

/// Checks an API version: `v1`, `v1alpha1`, `v2beta3`, as Kubernetes versions its APIs.
pub(crate) fn version(version: &str) -> Result<(), Error> {
    let number =
        |s: &str| !s.is_empty() && !s.starts_with('0') && s.bytes().all(|c| c.is_ascii_digit());
    let valid = version.strip_prefix('v').is_some_and(|rest| {
        let (major, level) = match rest.find(['a', 'b']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        number(major)
            && (level.is_empty()
                || ["alpha", "beta"]
                    .iter()
                    .any(|stage| level.strip_prefix(stage).is_some_and(number)))
    });
    if valid {
        Ok(())
    } else {
        Err(invalid(
            "version",
            version,
            "must be a Kubernetes API version: v1, v2, v1alpha1, v1beta2, ...",
        ))
    }
}

/// Checks a kind: UpperCamelCase, as Kubernetes kinds are, and free in the generated code.
pub(crate) fn kind(kind: &str) -> Result<(), Error> {
    let mut chars = kind.chars();
    let camel = chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphanumeric());
    if !camel {
        return Err(invalid(
            "kind",
            kind,
            "must be UpperCamelCase (an uppercase letter, then letters and digits), as Kubernetes \
             kinds are, e.g. Memcached",
        ));
    }
    if kind.len() > 63 {
        return Err(invalid(
            "kind",
            kind,
            "must be no more than 63 characters (its plural names the CRD)",
        ));
    }
    if IMPORTED.contains(&kind) {
        return Err(invalid(
            "kind",
            kind,
            "would shadow the opkit type of the same name in the generated code",
        ));
    }
    Ok(())
}

/// `name` as a Rust identifier: `r#name` for keywords.
pub(crate) fn ident(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_owned()
    }
}

/// A kind's module: its file name (`src/<stem>/`) and its name in code (`r#type` for `Type`).
pub(crate) fn module(kind: &str) -> (String, String) {
    let stem = kind.to_snake_case();
    let ident = ident(&stem);
    (stem, ident)
}

/// The library crate of a project: its name with `-` as `_`.
pub(crate) fn crate_name(project: &str) -> String {
    project.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(result: Result<impl std::fmt::Debug, Error>) -> String {
        result.expect_err("refused").to_string()
    }

    #[test]
    fn project_names_are_dns_labels_and_package_names() {
        assert!(project("memcached-operator").is_ok());
        assert!(reason(project("Memcached")).contains("lowercase RFC 1123 label"));
        assert!(reason(project("my_operator")).contains("lowercase RFC 1123 label"));
        assert!(reason(project("-x")).contains("lowercase RFC 1123 label"));
        assert!(reason(project("1password")).contains("must start with a letter"));
        assert!(reason(project(&"a".repeat(56))).contains("no more than 55"));
        assert!(reason(project("opkit")).contains("reserved"));
        assert!(reason(project("type")).contains("reserved"));
    }

    #[test]
    fn groups_need_a_dot_and_join_their_domain() {
        assert_eq!(
            group("cache", Some("example.com")).ok().as_deref(),
            Some("cache.example.com")
        );
        assert_eq!(
            group("cache.example.com", None).ok().as_deref(),
            Some("cache.example.com")
        );
        assert!(reason(group("cache", None)).contains("at least one dot"));
        assert!(reason(group("Cache", Some("example.com"))).contains("RFC 1123 subdomain"));
        assert!(reason(group("cache", Some("example..com"))).contains("invalid domain"));
    }

    #[test]
    fn versions_follow_kubernetes() {
        for ok in ["v1", "v2", "v10", "v1alpha1", "v2beta3"] {
            assert!(version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1", "v0", "v01", "V1", "v1alpha", "v1gamma1", "v1beta01", "v", "",
        ] {
            assert!(
                reason(version(bad)).contains("Kubernetes API version"),
                "{bad}"
            );
        }
    }

    #[test]
    fn kinds_are_upper_camel_case_and_free() {
        assert!(kind("Memcached").is_ok());
        assert!(kind("HTTPRoute2").is_ok());
        assert!(reason(kind("memcached")).contains("UpperCamelCase"));
        assert!(reason(kind("Mem-cached")).contains("UpperCamelCase"));
        assert!(reason(kind("")).contains("UpperCamelCase"));
        assert!(reason(kind("Context")).contains("shadow"));
    }

    #[test]
    fn modules_are_snake_case_and_escape_keywords() {
        assert_eq!(
            module("HttpRoute"),
            ("http_route".into(), "http_route".into())
        );
        assert_eq!(module("Type"), ("type".into(), "r#type".into()));
    }
}
