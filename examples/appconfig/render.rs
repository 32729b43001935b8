//! The templating rule: per-environment overrides, then `${...}` substitution.

use std::collections::BTreeMap;

use super::types::{AppConfigSpec, Environment};

/// A spec whose configuration cannot be rendered, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The rendered key is not a valid ConfigMap key.
    #[error(
        "config key {key:?} renders to {rendered:?}, not a valid ConfigMap key (letters, digits, '-', '_', '.')"
    )]
    InvalidKey {
        /// The key in the spec.
        key: String,
        /// What it renders to.
        rendered: String,
    },
    /// A value names a variable the rule does not define.
    #[error(
        "config key {key:?} uses ${{{name}}}; only ${{ENVIRONMENT}} and ${{APPLICATION}} exist (write $${{ for a literal ${{)"
    )]
    UnknownVariable {
        /// The key whose value uses it.
        key: String,
        /// The variable's name.
        name: String,
    },
    /// A `${` is never closed.
    #[error("config key {key:?} has a ${{ without its closing }}")]
    Unclosed {
        /// The key whose value has it.
        key: String,
    },
}

/// The ConfigMap data for the spec's environment.
///
/// A key `<environment>.<KEY>` overrides `KEY` in that environment and is dropped in the others;
/// every other key is used as is. In values, `${ENVIRONMENT}` and `${APPLICATION}` are replaced
/// and `$${` writes a literal `${`.
pub fn render(spec: &AppConfigSpec) -> Result<BTreeMap<String, String>, RenderError> {
    let mut base = BTreeMap::new();
    let mut overrides = BTreeMap::new();
    for (key, value) in &spec.config {
        match environment_prefix(key) {
            Some((env, rest)) if env == spec.environment => overrides.insert(rest, (key, value)),
            Some(_) => None,
            None => base.insert(key.as_str(), (key, value)),
        };
    }
    base.extend(overrides);
    base.into_iter()
        .map(|(rendered, (key, value))| {
            if !valid_key(rendered) {
                let (key, rendered) = (key.clone(), rendered.to_owned());
                return Err(RenderError::InvalidKey { key, rendered });
            }
            Ok((rendered.to_owned(), substitute(spec, key, value)?))
        })
        .collect()
}

fn environment_prefix(key: &str) -> Option<(Environment, &str)> {
    let (prefix, rest) = key.split_once('.')?;
    Environment::ALL.into_iter().find(|e| e.as_str() == prefix).map(|e| (e, rest))
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn substitute(spec: &AppConfigSpec, key: &str, value: &str) -> Result<String, RenderError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let end =
                after.find('}').ok_or_else(|| RenderError::Unclosed { key: key.to_owned() })?;
            match &after[..end] {
                "ENVIRONMENT" => out.push_str(spec.environment.as_str()),
                "APPLICATION" => out.push_str(&spec.application),
                name => {
                    let (key, name) = (key.to_owned(), name.to_owned());
                    return Err(RenderError::UnknownVariable { key, name });
                }
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A stable hash of the rendered data (FNV-1a, 64 bits), stamped on the Deployments it rolls.
pub fn hash(data: &BTreeMap<String, String>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (key, value) in data {
        // Lengths first, so ("ab", "c") and ("a", "bc") differ.
        for part in [
            key.len().to_string().as_bytes(),
            key.as_bytes(),
            value.len().to_string().as_bytes(),
            value.as_bytes(),
        ] {
            for byte in part {
                h = (h ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
            }
            h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}
