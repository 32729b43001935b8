//! The templates scaffolds and manifests are rendered from: the files under `templates/`,
//! embedded in the binary. They are Jinja templates (minijinja) with `{= =}` around variables
//! instead of `{{ }}`, so the `{{ }}` of Helm templates and Prometheus rules pass through as text.

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::Error;

macro_rules! templates {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../templates/", $path)))),*]
    };
}

/// Every template, by its path under `templates/`.
const TEMPLATES: &[(&str, &str)] = templates![
    "api/mod.rs",
    "api/reconcile.rs",
    "api/sample.yaml",
    "api/test.rs",
    "api/owns/ConfigMap.rs",
    "api/owns/CronJob.rs",
    "api/owns/DaemonSet.rs",
    "api/owns/Deployment.rs",
    "api/owns/Job.rs",
    "api/owns/PersistentVolumeClaim.rs",
    "api/owns/Service.rs",
    "api/owns/ServiceAccount.rs",
    "api/owns/StatefulSet.rs",
    "chart/.helmignore",
    "chart/Chart.yaml",
    "chart/values.yaml",
    "chart/templates/NOTES.txt",
    "chart/templates/_helpers.tpl",
    "chart/templates/clusterrole.yaml",
    "chart/templates/deployment.yaml",
    "chart/templates/leader-election-role.yaml",
    "chart/templates/metrics-reader-role.yaml",
    "chart/templates/metrics-service.yaml",
    "chart/templates/policies.yaml",
    "chart/templates/prometheusrule.yaml",
    "chart/templates/serviceaccount.yaml",
    "chart/templates/servicemonitor.yaml",
    "chart/templates/webhook.yaml",
    "config/certmanager/certificate.yaml",
    "config/certmanager/issuer.yaml",
    "config/certmanager/kustomization.yaml",
    "config/crd/kustomization.yaml",
    "config/default/kustomization.yaml",
    "config/default/manager_webhook_patch.yaml",
    "config/manager/kustomization.yaml",
    "config/manager/manager.yaml",
    "config/manager/metrics_service.yaml",
    "config/manager/namespace.yaml",
    "config/policies/kustomization.yaml",
    "config/prometheus/kustomization.yaml",
    "config/prometheus/monitor.yaml",
    "config/prometheus/rules.yaml",
    "config/rbac/kustomization.yaml",
    "config/samples/kustomization.yaml",
    "config/webhook/kustomization.yaml",
    "config/webhook/service.yaml",
    "project/Cargo.toml",
    "project/Dockerfile",
    "project/README.md",
    "project/ci.yml",
    "project/dockerignore",
    "project/gitignore",
    "project/lib.rs",
    "project/main.rs",
    "project/tests.rs",
    "webhook/mutator.rs",
    "webhook/mutator_test.rs",
    "webhook/test_imports.rs",
    "webhook/test_setup.rs",
    "webhook/validator.rs",
    "webhook/validator_test.rs",
];

/// The templates, parsed once per command.
pub(crate) struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Parses every template.
    pub(crate) fn new() -> Result<Templates, Error> {
        let template_error = |name: &str| {
            let name = name.to_owned();
            move |source| Error::Template { name, source }
        };
        let syntax = SyntaxConfig::builder()
            .variable_delimiters("{=", "=}")
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(template_error("syntax"))?;
        let mut env = Environment::new();
        env.set_syntax(syntax);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(template_error(name))?;
        }
        Ok(Templates { env })
    }

    /// Renders the template at `name` (its path under `templates/`) with `context`.
    pub(crate) fn render(&self, name: &str, context: &impl Serialize) -> Result<String, Error> {
        let template_error = |source| Error::Template {
            name: name.to_owned(),
            source,
        };
        self.env
            .get_template(name)
            .and_then(|t| t.render(minijinja::value::Serde(context)))
            .map_err(template_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let on_disk: Vec<String> = crate::testing::files(&dir)
            .iter()
            .map(|path| {
                let relative = path.strip_prefix(&dir).expect("under templates/");
                relative.to_string_lossy().replace('\\', "/")
            })
            .collect();
        let mut embedded: Vec<String> = TEMPLATES.iter().map(|(n, _)| (*n).to_owned()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn variables_use_their_own_delimiters_and_helm_braces_pass_through() {
        let templates = Templates::new().expect("templates parse");
        let context =
            serde_json::json!({ "name": "site-operator", "command": "cargo opkit manifests" });
        let out = templates
            .render("chart/templates/clusterrole.yaml", &context)
            .expect("renders");
        assert!(
            out.contains("name: {{ include \"site-operator.fullname\" . }}"),
            "{out}"
        );
        assert!(out.contains("`cargo opkit manifests`"), "{out}");
    }

    #[test]
    fn an_undefined_variable_is_an_error() {
        let templates = Templates::new().expect("templates parse");
        let refused = templates.render("config/manager/namespace.yaml", &serde_json::json!({}));
        assert!(refused.is_err_and(|e| {
            e.to_string()
                .starts_with("template config/manager/namespace.yaml")
        }),);
    }
}
