//! Secondary indexes over a controller's cache of primaries.
//!
//! "Find all WebApps using image X" without listing from the API server and without scanning the
//! cache: an index maps a key computed from each primary (`spec.image`) to the
//! primaries having it, and is kept up to date from the same watch stream that fills the cache.
//!
//! ```
//! use opkit::prelude::*;
//!
//! #[derive(CustomResource, Operator, Clone, Debug, Serialize, Deserialize, JsonSchema)]
//! #[kube(group = "example.com", version = "v1", kind = "Site", namespaced)]
//! #[operator(index(image = crate::site_image))]
//! pub struct SiteSpec { pub image: String }
//!
//! fn site_image(site: &Site) -> Vec<String> {
//!     vec![site.spec.image.clone()]
//! }
//!
//! async fn same_image(site: &Site, ctx: &Context<Site>) -> usize {
//!     ctx.index("image", &site.spec.image).len()
//! }
//! # fn main() {}
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use crate::cache::{self, Store};
use crate::object::Object;

/// A function computing the index keys of a primary.
///
/// ```
/// # use opkit::prelude::*;
/// # use opkit::k8s::*;
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # pub struct AppSpec { pub image: String }
/// let by_image: opkit::index::KeyFn<App> = |a| vec![a.spec.image.clone()];
/// # let _ = by_image;
/// ```
pub type KeyFn<K> = fn(&K) -> Vec<String>;

/// The named indexes of one controller. Cheap to clone; clones share the data.
pub(crate) struct Indexes<K: Object> {
    functions: Vec<(String, KeyFn<K>)>,
    data: Arc<RwLock<Data<K>>>,
}

struct Data<K: Object> {
    live: HashMap<String, Table<K>>,
    /// Rebuilt during a relist (`Init` .. `InitDone`), then swapped in.
    rebuilding: Option<HashMap<String, Table<K>>>,
}

/// Key → primaries having it, ordered by (namespace, name).
type Table<K> = HashMap<String, BTreeMap<(Option<String>, String), ObjectRef<K>>>;

impl<K: Object> Clone for Indexes<K> {
    fn clone(&self) -> Self {
        Self {
            functions: self.functions.clone(),
            data: self.data.clone(),
        }
    }
}

impl<K: Object> Default for Indexes<K> {
    fn default() -> Self {
        Self {
            functions: Vec::new(),
            data: Arc::new(RwLock::new(Data {
                live: HashMap::new(),
                rebuilding: None,
            })),
        }
    }
}

impl<K: Object> std::fmt::Debug for Indexes<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Indexes")
            .field("names", &self.names())
            .finish()
    }
}

impl<K: Object> Indexes<K> {
    /// Empty indexes computed by `functions`.
    pub fn new(functions: Vec<(String, KeyFn<K>)>) -> Self {
        Self {
            functions,
            ..Self::default()
        }
    }

    fn names(&self) -> Vec<String> {
        self.functions.iter().map(|(n, _)| n.clone()).collect()
    }

    /// References of the primaries whose `name` index has `key`, in a stable order.
    fn refs(&self, name: &str, key: &str) -> Vec<ObjectRef<K>> {
        let data = self.data.read().unwrap_or_else(|p| p.into_inner());
        data.live
            .get(name)
            .and_then(|t| t.get(key))
            .map(|refs| refs.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Applies one watch event.
    pub fn apply(&self, event: &watcher::Event<K>) {
        if self.functions.is_empty() {
            return;
        }
        let mut data = self.data.write().unwrap_or_else(|p| p.into_inner());
        match event {
            watcher::Event::Apply(obj) => {
                remove(&mut data.live, &ObjectRef::from_obj(obj));
                insert(&self.functions, &mut data.live, obj);
            }
            watcher::Event::Delete(obj) => remove(&mut data.live, &ObjectRef::from_obj(obj)),
            watcher::Event::Init => data.rebuilding = Some(HashMap::new()),
            watcher::Event::InitApply(obj) => {
                if let Some(tables) = data.rebuilding.as_mut() {
                    insert(&self.functions, tables, obj);
                }
            }
            watcher::Event::InitDone => {
                if let Some(tables) = data.rebuilding.take() {
                    data.live = tables;
                }
            }
        }
    }
}

/// The cache of primaries and its indexes, as watch mappers and reconciles see them. Objects
/// are kept compressed and decoded on each read (see the crate's performance notes): prefer
/// [`Primaries::get`] and the indexes to [`Primaries::state`] on hot paths.
///
/// ```
/// # use opkit::prelude::*;
/// # use opkit::k8s::*;
/// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
/// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
/// # pub struct AppSpec { pub secret: String }
/// fn apps_using(secret: &Secret, apps: &opkit::Primaries<App>) -> Vec<opkit::ObjectRef<App>> {
///     apps.index_refs("secret", secret.metadata.name.as_deref().unwrap_or_default())
/// }
/// ```
pub struct Primaries<K: Object> {
    store: Arc<Store<K>>,
    indexes: Indexes<K>,
}

impl<K: Object> Clone for Primaries<K> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            indexes: self.indexes.clone(),
        }
    }
}

impl<K: Object> std::fmt::Debug for Primaries<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Primaries")
            .field("indexes", &self.indexes)
            .finish_non_exhaustive()
    }
}

impl<K: Object> Primaries<K> {
    pub(crate) fn new(store: Arc<Store<K>>, indexes: Indexes<K>) -> Self {
        Self { store, indexes }
    }

    /// The cached primary `reference` points to.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// fn image(apps: &opkit::Primaries<App>, name: &str) -> Option<String> {
    ///     apps.get(&opkit::ObjectRef::new(name).within("default")).map(|a| a.spec.image.clone())
    /// }
    /// ```
    pub fn get(&self, reference: &ObjectRef<K>) -> Option<Arc<K>> {
        self.store.get(&key(reference)).map(Arc::new)
    }

    /// How many primaries the cache holds.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// fn count(apps: &opkit::Primaries<App>) -> usize {
    ///     apps.len()
    /// }
    /// ```
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether the cache holds no primary.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// fn idle(apps: &opkit::Primaries<App>) -> bool {
    ///     apps.is_empty()
    /// }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.store.len() == 0
    }

    /// Every primary in the cache.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// fn names(apps: &opkit::Primaries<App>) -> Vec<String> {
    ///     apps.state().iter().map(|a| a.name_any()).collect()
    /// }
    /// ```
    pub fn state(&self) -> Vec<Arc<K>> {
        self.store.state().into_iter().map(Arc::new).collect()
    }

    /// The primaries whose `index` has `key`.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// fn sharing(apps: &opkit::Primaries<App>, image: &str) -> usize {
    ///     apps.index("image", image).len()
    /// }
    /// ```
    pub fn index(&self, index: &str, key: &str) -> Vec<Arc<K>> {
        self.indexes
            .refs(index, key)
            .iter()
            .filter_map(|r| self.get(r))
            .collect()
    }

    /// References of the primaries whose `index` has `key`.
    ///
    /// ```
    /// # use opkit::prelude::*;
    /// # use opkit::k8s::*;
    /// # #[derive(CustomResource, Clone, Debug, Serialize, Deserialize, JsonSchema)]
    /// # #[kube(group = "example.com", version = "v1", kind = "App", namespaced)]
    /// # pub struct AppSpec { pub image: String }
    /// fn sharing(apps: &opkit::Primaries<App>, image: &str) -> Vec<opkit::ObjectRef<App>> {
    ///     apps.index_refs("image", image)
    /// }
    /// ```
    pub fn index_refs(&self, index: &str, key: &str) -> Vec<ObjectRef<K>> {
        self.indexes.refs(index, key)
    }
}

/// The cache key of `reference`.
fn key<K: Object>(reference: &ObjectRef<K>) -> cache::Key {
    cache::key(reference.namespace.as_deref(), &reference.name)
}

fn sort_key<K: Object>(reference: &ObjectRef<K>) -> (Option<String>, String) {
    (reference.namespace.clone(), reference.name.clone())
}

fn insert<K: Object>(
    functions: &[(String, KeyFn<K>)],
    tables: &mut HashMap<String, Table<K>>,
    obj: &K,
) {
    let reference = ObjectRef::from_obj(obj);
    for (name, keys) in functions {
        let table = tables.entry(name.clone()).or_default();
        for key in keys(obj) {
            table
                .entry(key)
                .or_default()
                .insert(sort_key(&reference), reference.clone());
        }
    }
}

fn remove<K: Object>(tables: &mut HashMap<String, Table<K>>, reference: &ObjectRef<K>) {
    for table in tables.values_mut() {
        table.retain(|_, refs| {
            refs.remove(&sort_key(reference));
            !refs.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn cm(name: &str, image: &str) -> ConfigMap {
        ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            data: Some([("image".to_string(), image.to_string())].into()),
            ..Default::default()
        }
    }

    fn image(c: &ConfigMap) -> Vec<String> {
        c.data
            .as_ref()
            .and_then(|d| d.get("image").cloned())
            .into_iter()
            .collect()
    }

    fn names(refs: Vec<ObjectRef<ConfigMap>>) -> Vec<String> {
        refs.into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn follows_applies_deletes_and_relists() {
        let idx = Indexes::<ConfigMap>::new(vec![("image".to_owned(), image)]);
        idx.apply(&watcher::Event::Apply(cm("a", "nginx")));
        idx.apply(&watcher::Event::Apply(cm("b", "nginx")));
        idx.apply(&watcher::Event::Apply(cm("c", "redis")));
        assert_eq!(names(idx.refs("image", "nginx")), ["a", "b"]);
        idx.apply(&watcher::Event::Apply(cm("b", "redis")));
        assert_eq!(names(idx.refs("image", "nginx")), ["a"]);
        assert_eq!(names(idx.refs("image", "redis")), ["b", "c"]);
        idx.apply(&watcher::Event::Delete(cm("c", "redis")));
        assert_eq!(names(idx.refs("image", "redis")), ["b"]);
        idx.apply(&watcher::Event::Init);
        idx.apply(&watcher::Event::InitApply(cm("d", "nginx")));
        assert_eq!(
            names(idx.refs("image", "nginx")),
            ["a"],
            "old view until the relist is done"
        );
        idx.apply(&watcher::Event::InitDone);
        assert_eq!(names(idx.refs("image", "nginx")), ["d"]);
        assert!(idx.refs("image", "redis").is_empty());
    }
}
