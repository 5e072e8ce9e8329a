//! In-memory indexes of the ScaledObjects and HPAs of the cluster, fed by watches, so that the
//! ScaledObject validator answers "who else scales this workload / owns this HPA name" in O(1).

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_api::ScaledObject;

/// `(namespace, API group, kind, name)` of a scale target.
pub type TargetKey = (String, String, String, String);
type NameKey = (String, String);

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
pub fn api_group(api_version: &str) -> &str {
    api_version
        .rsplit_once('/')
        .map(|(g, _)| g)
        .unwrap_or_default()
}

/// The target key of a ScaledObject.
pub fn so_target_key(namespace: &str, so: &ScaledObject) -> TargetKey {
    let t = &so.spec.scale_target_ref;
    (
        namespace.to_owned(),
        api_group(t.api_version()).to_owned(),
        t.kind().to_owned(),
        t.name.clone(),
    )
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct SoEntry {
    target: TargetKey,
    hpa: String,
}

/// An HPA as the validator needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HpaEntry {
    pub name: String,
    pub target: TargetKey,
    /// Name of the ScaledObject in its ownerReferences, if any.
    pub owner_scaled_object: Option<String>,
}

/// A sorted set of names, nearly always of one: a `Vec` of exactly that many names, where a
/// `BTreeSet` would allocate a node for eleven (~280 bytes more for each of the three maps below).
#[derive(Default)]
struct Names(Vec<String>);

impl Names {
    fn insert(&mut self, name: &str) {
        if let Err(at) = self.0.binary_search_by(|n| n.as_str().cmp(name)) {
            self.0.reserve_exact(1);
            self.0.insert(at, name.to_owned());
        }
    }

    fn remove(&mut self, name: &str) {
        if let Ok(at) = self.0.binary_search_by(|n| n.as_str().cmp(name)) {
            self.0.remove(at);
            self.0.shrink_to_fit();
        }
    }

    fn iter(&self) -> std::slice::Iter<'_, String> {
        self.0.iter()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Default)]
struct Inner {
    scaled_objects: HashMap<NameKey, SoEntry>,
    targets: HashMap<TargetKey, Names>,
    hpa_names: HashMap<NameKey, Names>,
    hpas: HashMap<NameKey, HpaEntry>,
    hpa_targets: HashMap<TargetKey, Names>,
}

/// The indexes. Every operation takes one lock and touches a constant number of map entries.
#[derive(Default)]
pub struct Index {
    inner: RwLock<Inner>,
}

fn remove_from<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Names>, key: &K, name: &str) {
    if let Some(set) = map.get_mut(key) {
        set.remove(name);
        if set.is_empty() {
            map.remove(key);
        }
    }
}

impl Index {
    pub fn new() -> Self {
        Self::default()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds or replaces a ScaledObject.
    pub fn apply_scaled_object(&self, so: &ScaledObject) {
        let (Some(ns), Some(name)) = (
            so.metadata.namespace.as_deref(),
            so.metadata.name.as_deref(),
        ) else {
            return;
        };
        let entry = SoEntry {
            target: so_target_key(ns, so),
            hpa: so.hpa_name(),
        };
        let key = (ns.to_owned(), name.to_owned());
        let mut inner = self.write();
        if let Some(old) = inner.scaled_objects.remove(&key) {
            remove_from(&mut inner.targets, &old.target, name);
            remove_from(&mut inner.hpa_names, &(ns.to_owned(), old.hpa), name);
        }
        inner
            .targets
            .entry(entry.target.clone())
            .or_default()
            .insert(name);
        inner
            .hpa_names
            .entry((ns.to_owned(), entry.hpa.clone()))
            .or_default()
            .insert(name);
        inner.scaled_objects.insert(key, entry);
    }

    pub fn delete_scaled_object(&self, namespace: &str, name: &str) {
        let mut inner = self.write();
        if let Some(old) = inner
            .scaled_objects
            .remove(&(namespace.to_owned(), name.to_owned()))
        {
            remove_from(&mut inner.targets, &old.target, name);
            remove_from(&mut inner.hpa_names, &(namespace.to_owned(), old.hpa), name);
        }
    }

    /// Adds or replaces an HPA.
    pub fn apply_hpa(&self, hpa: &HorizontalPodAutoscaler) {
        let (Some(ns), Some(name)) = (
            hpa.metadata.namespace.as_deref(),
            hpa.metadata.name.as_deref(),
        ) else {
            return;
        };
        let Some(spec) = &hpa.spec else { return };
        let r = &spec.scale_target_ref;
        let target = (
            ns.to_owned(),
            api_group(r.api_version.as_deref().unwrap_or_default()).to_owned(),
            r.kind.clone(),
            r.name.clone(),
        );
        let owner_scaled_object = hpa
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.kind == "ScaledObject")
            .map(|o| o.name.clone());
        let key = (ns.to_owned(), name.to_owned());
        let mut inner = self.write();
        if let Some(old) = inner.hpas.remove(&key) {
            remove_from(&mut inner.hpa_targets, &old.target, name);
        }
        inner
            .hpa_targets
            .entry(target.clone())
            .or_default()
            .insert(name);
        inner.hpas.insert(
            key,
            HpaEntry {
                name: name.to_owned(),
                target,
                owner_scaled_object,
            },
        );
    }

    pub fn delete_hpa(&self, namespace: &str, name: &str) {
        let mut inner = self.write();
        if let Some(old) = inner.hpas.remove(&(namespace.to_owned(), name.to_owned())) {
            remove_from(&mut inner.hpa_targets, &old.target, name);
        }
    }

    /// Keeps only the ScaledObjects in `keep` (after a relist).
    pub fn retain_scaled_objects(&self, keep: &BTreeSet<(String, String)>) {
        let stale: Vec<NameKey> = self
            .read()
            .scaled_objects
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        for (ns, name) in stale {
            self.delete_scaled_object(&ns, &name);
        }
    }

    /// Keeps only the HPAs in `keep` (after a relist).
    pub fn retain_hpas(&self, keep: &BTreeSet<(String, String)>) {
        let stale: Vec<NameKey> = self
            .read()
            .hpas
            .keys()
            .filter(|k| !keep.contains(*k))
            .cloned()
            .collect();
        for (ns, name) in stale {
            self.delete_hpa(&ns, &name);
        }
    }

    /// Another ScaledObject (not `name`) scaling `target`.
    pub fn other_scaled_object_for_target(&self, target: &TargetKey, name: &str) -> Option<String> {
        self.read()
            .targets
            .get(target)
            .and_then(|s| s.iter().find(|n| *n != name).cloned())
    }

    /// Another ScaledObject (not `name`) whose HPA is named `hpa`.
    pub fn other_scaled_object_for_hpa(
        &self,
        namespace: &str,
        hpa: &str,
        name: &str,
    ) -> Option<String> {
        self.read()
            .hpa_names
            .get(&(namespace.to_owned(), hpa.to_owned()))
            .and_then(|s| s.iter().find(|n| *n != name).cloned())
    }

    /// The HPAs scaling `target`.
    pub fn hpas_for_target(&self, target: &TargetKey) -> Vec<HpaEntry> {
        let inner = self.read();
        inner
            .hpa_targets
            .get(target)
            .into_iter()
            .flat_map(Names::iter)
            .filter_map(|h| inner.hpas.get(&(target.0.clone(), h.clone())).cloned())
            .collect()
    }

    /// Number of indexed ScaledObjects and HPAs.
    pub fn len(&self) -> (usize, usize) {
        let inner = self.read();
        (inner.scaled_objects.len(), inner.hpas.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn so(ns: &str, name: &str, target: &str, hpa: Option<&str>) -> ScaledObject {
        let mut v = serde_json::json!({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"scaleTargetRef": {"name": target}, "triggers": []}});
        if let Some(h) = hpa {
            v["spec"]["advanced"] =
                serde_json::json!({"horizontalPodAutoscalerConfig": {"name": h}});
        }
        serde_json::from_value(v).expect("ScaledObject")
    }

    fn key(ns: &str, name: &str) -> TargetKey {
        (ns.into(), "apps".into(), "Deployment".into(), name.into())
    }

    #[test]
    fn updates_move_entries_and_deletes_remove_them() {
        let index = Index::new();
        index.apply_scaled_object(&so("a", "one", "web", None));
        assert_eq!(
            index.other_scaled_object_for_target(&key("a", "web"), "two"),
            Some("one".into())
        );
        assert_eq!(
            index.other_scaled_object_for_target(&key("a", "web"), "one"),
            None
        );
        assert_eq!(
            index.other_scaled_object_for_target(&key("b", "web"), "two"),
            None
        );
        assert_eq!(
            index.other_scaled_object_for_hpa("a", "keda-hpa-one", "two"),
            Some("one".into())
        );
        // Retargeting and renaming the HPA leaves no stale entries.
        index.apply_scaled_object(&so("a", "one", "api", Some("custom")));
        assert_eq!(
            index.other_scaled_object_for_target(&key("a", "web"), "two"),
            None
        );
        assert_eq!(
            index.other_scaled_object_for_hpa("a", "keda-hpa-one", "two"),
            None
        );
        assert_eq!(
            index.other_scaled_object_for_hpa("a", "custom", "two"),
            Some("one".into())
        );
        index.delete_scaled_object("a", "one");
        assert!(index.is_empty());
    }

    #[test]
    fn names_stay_sorted_and_unique() {
        let mut names = Names::default();
        for n in ["b", "a", "c", "a"] {
            names.insert(n);
        }
        assert_eq!(names.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        names.remove("b");
        names.remove("x");
        assert_eq!(names.iter().collect::<Vec<_>>(), ["a", "c"]);
        names.remove("a");
        names.remove("c");
        assert!(names.is_empty());
    }

    #[test]
    fn hpas_by_target_and_relist() {
        let index = Index::new();
        let hpa: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "h", "namespace": "a", "ownerReferences": [{"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "one", "uid": "u"}]},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 2}
        }))
        .expect("HPA");
        index.apply_hpa(&hpa);
        let found = index.hpas_for_target(&key("a", "web"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].owner_scaled_object.as_deref(), Some("one"));
        index.apply_scaled_object(&so("a", "one", "web", None));
        index.retain_hpas(&BTreeSet::new());
        index.retain_scaled_objects(&BTreeSet::new());
        assert!(index.is_empty());
        assert!(index.hpas_for_target(&key("a", "web")).is_empty());
    }
}
