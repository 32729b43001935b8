//! `#[derive(Operator)]`: the glue between a kube custom resource and opkit.
//!
//! Used on the spec struct beside kube's `#[derive(CustomResource)]`; it reads `#[kube(kind = ...)]`
//! to find the generated root type and implements `opkit::Operator` for it: `Kind::controller(data)`
//! builds the kind's `opkit::Controller` from `#[operator(...)]`, carrying the kind's CRD.
//!
//! | attribute | meaning |
//! |---|---|
//! | `owns(Deployment, Service)` | dependents controlled through owner references; their changes trigger a reconcile |
//! | `watches(Secret = crate::secret_users)` | other kinds and the function mapping one to the primaries to reconcile |
//! | `index(image = crate::webapp_image)` | a secondary index over the cache, keyed by `fn(&Primary) -> Vec<String>` |
//! | `finalizer = "webapp.example.com/finalizer"` | the operator has cleanup; the finalizer guards it |
//! | `concurrency = 4` | at most that many reconciles at once (default 16; for no limit, `Kind::controller(data).concurrency(0)`) |
//! | `requeue = "5m"` | resync interval when nothing changes (`ms`, `s`, `m`, `h`) |
//! | `field_manager = "webapp-operator"` | server-side apply field manager |
//! | `name = "webapp"` | controller name in metrics, events and logs (default: the kind, lowercase) |
//! | `rbac(group = "", resources = "secrets", verbs = "get,list")` | extra RBAC rules, exact verbs only |
//! | `reconcile_on(labels, annotations)` | also reconcile on label/annotation changes of the primary |
//!
//! Misuse is a compile error pointing at the offending attribute and saying what to write instead.
//!
//! ```
//! use opkit::prelude::*;
//!
//! #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
//! #[kube(group = "example.com", version = "v1", kind = "WebApp", namespaced)]
//! #[operator(owns(Deployment, Service), finalizer = "webapp.example.com/finalizer", requeue = "5m")]
//! pub struct WebAppSpec {
//!     pub replicas: i32,
//! }
//!
//! use opkit::k8s::{Deployment, Service};
//! let controller = WebApp::controller(());
//! assert_eq!(controller.name(), "webapp");
//! assert_eq!(controller.kinds(), ["Deployment", "Service"]);
//! ```

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::parse::ParseStream;
use syn::{Data, DeriveInput, Error, Ident, LitInt, LitStr, Path, Token, parse_macro_input};

const VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// Implements `opkit::Operator` for the custom resource generated from this spec struct.
///
/// See the [crate documentation](crate) for the attributes.
#[proc_macro_derive(Operator, attributes(operator))]
pub fn derive_operator(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(Error::into_compile_error)
        .into()
}

#[derive(Default)]
struct Attrs {
    owns: Vec<Path>,
    watches: Vec<(Path, Path)>,
    indexes: Vec<(String, Path)>,
    finalizer: Option<LitStr>,
    concurrency: Option<u16>,
    requeue_ms: Option<u64>,
    field_manager: Option<LitStr>,
    name: Option<LitStr>,
    rules: Vec<(String, Vec<String>, Vec<String>)>,
    on_labels: bool,
    on_annotations: bool,
    seen: Vec<String>,
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    if !matches!(input.data, Data::Struct(_)) {
        return Err(Error::new_spanned(
            &input.ident,
            "#[derive(Operator)] goes on the spec struct, beside #[derive(CustomResource)]",
        ));
    }
    let (kind, root) = kube_root(input)?;
    let mut attrs = Attrs::default();
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("operator")) {
        attr.parse_args_with(|stream: ParseStream| parse_operator(stream, &mut attrs))?;
    }
    let name = attrs
        .name
        .as_ref()
        .map(LitStr::value)
        .unwrap_or_else(|| kind.to_lowercase());
    let mut controller = quote! {
        ::opkit::Controller::new(#name, data)
            .with_crd(<Self as ::opkit::kube::CustomResourceExt>::crd())
    };
    if let Some(f) = &attrs.finalizer {
        controller = quote! { #controller.finalizer(#f) };
    }
    if let Some(c) = attrs.concurrency {
        controller = quote! { #controller.concurrency(#c) };
    }
    if let Some(ms) = attrs.requeue_ms {
        controller = quote! { #controller.requeue(::opkit::__private::Duration::from_millis(#ms)) };
    }
    if let Some(fm) = &attrs.field_manager {
        controller = quote! { #controller.field_manager(#fm) };
    }
    for (group, resources, verbs) in &attrs.rules {
        controller = quote! { #controller.rule(::opkit::Rule::new(#group, &[#(#resources),*], &[#(#verbs),*])) };
    }
    if attrs.on_labels {
        controller = quote! { #controller.on_label_changes() };
    }
    if attrs.on_annotations {
        controller = quote! { #controller.on_annotation_changes() };
    }
    for owned in &attrs.owns {
        controller = quote! { #controller.owns::<#owned>() };
    }
    for (watched, mapper) in &attrs.watches {
        controller = quote! { #controller.watches::<#watched>(#mapper) };
    }
    for (index, keys) in &attrs.indexes {
        controller = quote! { #controller.index(#index, #keys) };
    }
    Ok(quote! {
        impl ::opkit::Operator for #root {
            fn controller<D: ::core::marker::Send + ::core::marker::Sync + 'static>(
                data: D,
            ) -> ::opkit::Controller<Self, D> {
                #controller
            }
        }
    })
}

/// The kind and root type name kube's `#[kube(...)]` attribute declares.
fn kube_root(input: &DeriveInput) -> syn::Result<(String, Ident)> {
    let mut kind: Option<LitStr> = None;
    let mut root: Option<LitStr> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("kube")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("kind") {
                kind = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("struct") {
                root = Some(meta.value()?.parse()?);
            } else if meta.input.peek(Token![=]) {
                meta.value()?.parse::<syn::Expr>()?;
            } else if meta.input.peek(syn::token::Paren) {
                let content;
                syn::parenthesized!(content in meta.input);
                content.parse::<TokenStream2>()?;
            }
            Ok(())
        })?;
    }
    let Some(kind) = kind else {
        return Err(Error::new_spanned(
            &input.ident,
            "#[derive(Operator)] needs kube's attribute on the same struct: \
             #[derive(CustomResource)] #[kube(group = \"example.com\", version = \"v1\", kind = \"MyKind\")]",
        ));
    };
    let root = root.unwrap_or_else(|| kind.clone());
    let ident = syn::parse_str::<Ident>(&root.value())
        .map_err(|_| Error::new(root.span(), "not a valid type name"))?;
    Ok((
        kind.value(),
        Ident::new(&ident.to_string(), Span::call_site()),
    ))
}

fn parse_operator(stream: ParseStream, attrs: &mut Attrs) -> syn::Result<()> {
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        let repeatable = matches!(key.as_str(), "rbac" | "owns" | "watches" | "index");
        if !repeatable && attrs.seen.contains(&key) {
            return Err(meta.error(format!("`{key}` is given twice; keep one")));
        }
        attrs.seen.push(key.clone());
        match key.as_str() {
            "owns" => {
                let content;
                syn::parenthesized!(content in meta.input);
                let kinds = content.parse_terminated(Path::parse_mod_style, Token![,])?;
                if kinds.is_empty() {
                    return Err(meta.error("list the owned kinds: owns(Deployment, Service)"));
                }
                attrs.owns.extend(kinds);
                Ok(())
            }
            "watches" => {
                if !meta.input.peek(syn::token::Paren) {
                    return Err(meta.error("write watches(Kind = path::to::mapper)"));
                }
                meta.parse_nested_meta(|inner| {
                    if !inner.input.peek(Token![=]) {
                        return Err(inner.error(
                            "a watched kind needs a mapper: watches(Secret = crate::webapps_using_secret), \
                             with fn(&Secret, &opkit::Primaries<Primary>) -> Vec<opkit::ObjectRef<Primary>>",
                        ));
                    }
                    let mapper: Path = inner.value()?.parse()?;
                    attrs.watches.push((inner.path.clone(), mapper));
                    Ok(())
                })
            }
            "index" => meta.parse_nested_meta(|inner| {
                let Some(name) = inner.path.get_ident().map(ToString::to_string) else {
                    return Err(inner.error("name the index: index(image = crate::webapp_image)"));
                };
                if !inner.input.peek(Token![=]) {
                    return Err(inner.error(
                        "an index needs its key function: index(image = crate::webapp_image), \
                         with fn(&Primary) -> Vec<String>",
                    ));
                }
                let keys: Path = inner.value()?.parse()?;
                attrs.indexes.push((name, keys));
                Ok(())
            }),
            "finalizer" => {
                let lit: LitStr = string_value(&meta, "finalizer = \"example.com/cleanup\"")?;
                let value = lit.value();
                let valid = value.split_once('/').is_some_and(|(domain, name)| {
                    domain.contains('.')
                        && !name.is_empty()
                        && value.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || "-./".contains(c)
                        })
                });
                if !valid {
                    return Err(Error::new(
                        lit.span(),
                        "finalizer names are domain-qualified and lowercase, like \"webapp.example.com/finalizer\"",
                    ));
                }
                attrs.finalizer = Some(lit);
                Ok(())
            }
            "concurrency" => {
                let value = meta.value()?;
                if value.peek(LitStr) {
                    let lit: LitStr = value.parse()?;
                    return Err(Error::new(
                        lit.span(),
                        "concurrency takes an integer: concurrency = 4",
                    ));
                }
                let lit: LitInt = value.parse()?;
                let n: u16 = lit.base10_parse().map_err(|_| {
                    Error::new(
                        lit.span(),
                        "concurrency is a number of workers from 1 to 65535",
                    )
                })?;
                if n == 0 {
                    return Err(Error::new(
                        lit.span(),
                        "concurrency = 0 would mean unbounded: give a limit here, or call `.concurrency(0)` on `Kind::controller(data)`",
                    ));
                }
                attrs.concurrency = Some(n);
                Ok(())
            }
            "requeue" => {
                let lit = string_value(&meta, "requeue = \"5m\"")?;
                let ms = parse_duration(&lit.value()).ok_or_else(|| {
                    Error::new(
                        lit.span(),
                        "expected a duration such as \"30s\", \"5m\" or \"1h\" (units: ms, s, m, h)",
                    )
                })?;
                attrs.requeue_ms = Some(ms);
                Ok(())
            }
            "field_manager" => {
                let lit = string_value(&meta, "field_manager = \"webapp-operator\"")?;
                if lit.value().is_empty() || lit.value().len() > 128 {
                    return Err(Error::new(
                        lit.span(),
                        "a field manager name has 1 to 128 characters",
                    ));
                }
                attrs.field_manager = Some(lit);
                Ok(())
            }
            "name" => {
                attrs.name = Some(string_value(&meta, "name = \"webapp\"")?);
                Ok(())
            }
            "rbac" => parse_rbac(&meta, attrs),
            "reconcile_on" => meta.parse_nested_meta(|inner| {
                if inner.path.is_ident("labels") {
                    attrs.on_labels = true;
                    Ok(())
                } else if inner.path.is_ident("annotations") {
                    attrs.on_annotations = true;
                    Ok(())
                } else {
                    Err(inner.error(
                        "reconcile_on takes `labels` and/or `annotations`: reconcile_on(labels)",
                    ))
                }
            }),
            _ => Err(meta.error(
                "unknown operator attribute; expected one of: owns, watches, index, finalizer, \
                 concurrency, requeue, field_manager, name, rbac, reconcile_on",
            )),
        }
    });
    syn::parse::Parser::parse2(parser, stream.parse::<TokenStream2>()?)
}

fn string_value(meta: &syn::meta::ParseNestedMeta, example: &str) -> syn::Result<LitStr> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        return value.parse();
    }
    let other: syn::Expr = value.parse()?;
    Err(Error::new_spanned(
        other,
        format!("expected a string: {example}"),
    ))
}

fn parse_rbac(meta: &syn::meta::ParseNestedMeta, attrs: &mut Attrs) -> syn::Result<()> {
    let mut group: Option<String> = None;
    let mut resources: Option<Vec<String>> = None;
    let mut verbs: Option<Vec<String>> = None;
    meta.parse_nested_meta(|inner| {
        let key = inner.path.get_ident().map(ToString::to_string).unwrap_or_default();
        match key.as_str() {
            "group" => group = Some(string_value(&inner, "group = \"apps\"")?.value()),
            "resources" => {
                let lit = string_value(&inner, "resources = \"secrets,configmaps\"")?;
                let list = split_list(&lit.value());
                if list.is_empty() || list.iter().any(|r| r.contains('*')) {
                    return Err(Error::new(
                        lit.span(),
                        "wildcards are not allowed: name the resources, like resources = \"secrets\"",
                    ));
                }
                resources = Some(list);
            }
            "verbs" => {
                let lit = string_value(&inner, "verbs = \"get,list,watch\"")?;
                let list = split_list(&lit.value());
                if list.is_empty() || list.iter().any(|v| v.contains('*')) {
                    return Err(Error::new(
                        lit.span(),
                        "wildcards are not allowed: list the exact verbs, like verbs = \"get,list,watch\"",
                    ));
                }
                if let Some(bad) = list.iter().find(|v| !VERBS.contains(&v.as_str())) {
                    return Err(Error::new(
                        lit.span(),
                        format!("unknown verb `{bad}`; use get, list, watch, create, update, patch, delete or deletecollection"),
                    ));
                }
                verbs = Some(list);
            }
            _ => return Err(inner.error("rbac takes group, resources and verbs")),
        }
        Ok(())
    })?;
    match (resources, verbs) {
        (Some(resources), Some(verbs)) => {
            attrs
                .rules
                .push((group.unwrap_or_default(), resources, verbs));
            Ok(())
        }
        _ => {
            Err(meta
                .error("write rbac(group = \"\", resources = \"secrets\", verbs = \"get,list\")"))
        }
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses "500ms", "30s", "5m", "1h" (also combined: "1h30m") into milliseconds.
fn parse_duration(s: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (1, 2)
        } else if rest.starts_with('s') {
            (1000, 1)
        } else if rest.starts_with('m') {
            (60_000, 1)
        } else if rest.starts_with('h') {
            (3_600_000, 1)
        } else {
            return None;
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[len..];
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Some(300_000));
        assert_eq!(parse_duration("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("5 minutes"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("m"), None);
    }

    #[test]
    fn expands_owns_and_finalizer() {
        let input: DeriveInput = syn::parse_quote! {
            #[kube(group = "example.com", version = "v1", kind = "WebApp", namespaced, shortname = "wa")]
            #[operator(owns(Deployment, Service), finalizer = "webapp.example.com/finalizer", concurrency = 4)]
            pub struct WebAppSpec { replicas: i32 }
        };
        let out = expand(&input)
            .map(|t| t.to_string())
            .unwrap_or_else(|e| e.to_string());
        assert!(
            out.contains("impl :: opkit :: Operator for WebApp"),
            "{out}"
        );
        assert!(out.contains(". owns :: < Deployment > ()"), "{out}");
        assert!(out.contains(". concurrency (4u16)"), "{out}");
    }

    #[test]
    fn follows_kube_struct_renames_and_indexes() {
        let input: DeriveInput = syn::parse_quote! {
            #[kube(group = "example.com", version = "v1", kind = "Db", struct = "Database")]
            #[operator(index(image = crate::by_image), name = "databases")]
            pub struct DbSpec { image: String }
        };
        let out = expand(&input)
            .map(|t| t.to_string())
            .unwrap_or_else(|e| e.to_string());
        assert!(
            out.contains("impl :: opkit :: Operator for Database"),
            "{out}"
        );
        assert!(
            out.contains(". index (\"image\" , crate :: by_image)"),
            "{out}"
        );
        assert!(
            out.contains("Controller :: new (\"databases\" , data)"),
            "{out}"
        );
    }

    #[test]
    fn rejects_wildcard_verbs() {
        let input: DeriveInput = syn::parse_quote! {
            #[kube(group = "example.com", version = "v1", kind = "WebApp")]
            #[operator(rbac(group = "", resources = "secrets", verbs = "*"))]
            pub struct WebAppSpec { replicas: i32 }
        };
        let err = expand(&input)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("wildcards are not allowed"), "{err}");
    }
}
