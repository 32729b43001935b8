//! The project record, `.opkit`: what `cargo opkit` scaffolded in a project, read by every
//! later command to add to it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The file name of the record, at the project's root.
pub const RECORD: &str = ".opkit";

const HEADER: &str = "# What `cargo opkit` scaffolded in this project; it reads this file to add \
                      to it.\n# Keep it under version control.\n";

/// An opkit project as scaffolded: its name, API group and kinds.
///
/// ```
/// let project = cargo_opkit::Project::new("memcached-operator", "cache.example.com");
/// assert_eq!(project.namespace(), "memcached-operator-system");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// The package and operator name.
    pub name: String,
    /// The API group of its kinds.
    pub group: String,
    /// Its kinds, in the order they were added.
    #[serde(default, rename = "api")]
    pub apis: Vec<Api>,
}

/// One kind of the project.
///
/// ```
/// let api = cargo_opkit::Api::new("Memcached", "v1", true);
/// assert!(api.owns.is_empty() && api.webhooks.is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Api {
    /// The kind, UpperCamelCase.
    pub kind: String,
    /// Its version, `v1`.
    pub version: String,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// The kinds its controller owns.
    #[serde(default)]
    pub owns: Vec<String>,
    /// Its admission webhooks.
    #[serde(default)]
    pub webhooks: Vec<Webhook>,
}

/// An admission webhook of a kind.
///
/// ```
/// assert_eq!(cargo_opkit::Webhook::Validating.as_str(), "validating");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Webhook {
    /// Accepts or refuses writes.
    Validating,
    /// Changes objects before they are stored.
    Mutating,
}

impl Webhook {
    /// The webhook's kind in lower case.
    ///
    /// ```
    /// assert_eq!(cargo_opkit::Webhook::Mutating.as_str(), "mutating");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Webhook::Validating => "validating",
            Webhook::Mutating => "mutating",
        }
    }
}

impl Api {
    /// A kind with no owned kinds and no webhooks.
    ///
    /// ```
    /// let api = cargo_opkit::Api::new("Backup", "v1alpha1", false);
    /// assert!(!api.namespaced);
    /// ```
    pub fn new(kind: impl Into<String>, version: impl Into<String>, namespaced: bool) -> Self {
        Api {
            kind: kind.into(),
            version: version.into(),
            namespaced,
            owns: Vec::new(),
            webhooks: Vec::new(),
        }
    }
}

impl Project {
    /// A project with no kinds yet.
    ///
    /// ```
    /// let project = cargo_opkit::Project::new("memcached-operator", "cache.example.com");
    /// assert!(project.apis.is_empty());
    /// ```
    pub fn new(name: impl Into<String>, group: impl Into<String>) -> Self {
        Project {
            name: name.into(),
            group: group.into(),
            apis: Vec::new(),
        }
    }

    /// The namespace its manifests deploy it to: `NAME-system`, as kubebuilder names it.
    ///
    /// ```
    /// let project = cargo_opkit::Project::new("site-operator", "sites.example.com");
    /// assert_eq!(project.namespace(), "site-operator-system");
    /// ```
    pub fn namespace(&self) -> String {
        format!("{}-system", self.name)
    }

    /// The project whose root is `dir` or its nearest ancestor with a record, and that root.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let refused = cargo_opkit::Project::find(dir.path());
    /// assert!(refused.is_err_and(|e| e.to_string().contains("is not an opkit project")));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn find(dir: &Path) -> Result<(PathBuf, Project), Error> {
        let start = std::path::absolute(dir).map_err(Error::io(dir))?;
        let root = start
            .ancestors()
            .find(|d| d.join(RECORD).is_file())
            .ok_or_else(|| Error::NotAProject {
                path: start.clone(),
            })?;
        let project = Project::load(root)?;
        Ok((root.to_path_buf(), project))
    }

    /// The project recorded at `root`.
    pub(crate) fn load(root: &Path) -> Result<Project, Error> {
        let path = root.join(RECORD);
        let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
        toml::from_str(&text).map_err(|source| Error::Record { path, source })
    }

    /// The record's text.
    pub(crate) fn to_record(&self) -> Result<String, Error> {
        Ok(format!("{HEADER}{}", toml::to_string(self)?))
    }

    /// The kind named `kind`, if the project has it.
    pub(crate) fn api_mut(&mut self, kind: &str) -> Option<&mut Api> {
        self.apis.iter_mut().find(|a| a.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips() {
        let mut project = Project::new("memcached-operator", "cache.example.com");
        let mut api = Api::new("Memcached", "v1", true);
        api.owns = vec!["Deployment".into()];
        api.webhooks = vec![Webhook::Validating];
        project.apis.push(api);
        let text = project.to_record().expect("renders");
        assert!(
            text.starts_with("# What `cargo opkit` scaffolded"),
            "{text}"
        );
        assert!(text.contains("[[api]]\nkind = \"Memcached\""), "{text}");
        assert_eq!(toml::from_str::<Project>(&text).ok(), Some(project));
    }
}
