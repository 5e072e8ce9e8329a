//! The Jobs and pods of every ScaledJob, from two watches, grouped so a poll reads its own in O(its
//! Jobs) and sends no request (upstream lists Jobs three times and pods once per unfinished Job on
//! every poll). Only what the decisions read is kept: a Job's name, generation annotation, creation and
//! status; a pod's `job-name` label, phase and conditions.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use keda_api::consts::{annotations, labels};
use keda_core::scaled_job::jobs::JOB_NAME_LABEL;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

/// (namespace, name) of the object a group belongs to: the ScaledJob for Jobs, the Job for pods.
pub type GroupKey = (String, String);

/// Objects grouped by a label, replaced atomically on every re-list.
pub struct Grouped<K> {
    inner: Mutex<GroupedInner<K>>,
    /// Set once the first list has been applied.
    synced: watch::Sender<bool>,
}

struct GroupedInner<K> {
    groups: HashMap<GroupKey, BTreeMap<String, Arc<K>>>,
    /// Which group each object (namespace, name) is in, so a relabelled object leaves its old group.
    placed: HashMap<(String, String), GroupKey>,
    /// Objects of a re-list in progress.
    relist: Option<Vec<(GroupKey, String, Arc<K>)>>,
}

impl<K> Default for Grouped<K> {
    fn default() -> Self {
        Grouped {
            inner: Mutex::new(GroupedInner {
                groups: HashMap::new(),
                placed: HashMap::new(),
                relist: None,
            }),
            synced: watch::channel(false).0,
        }
    }
}

impl<K> Grouped<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, GroupedInner<K>> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The objects of one group, by name.
    pub fn group(&self, key: &GroupKey) -> Vec<Arc<K>> {
        self.lock()
            .groups
            .get(key)
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether `name` is in the group.
    pub fn contains(&self, key: &GroupKey, name: &str) -> bool {
        self.lock()
            .groups
            .get(key)
            .is_some_and(|g| g.contains_key(name))
    }

    /// Waits until the first list was applied.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Number of objects held (for tests and telemetry).
    pub fn len(&self) -> usize {
        self.lock().placed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn remove(inner: &mut GroupedInner<K>, ns: &str, name: &str) {
        if let Some(old) = inner.placed.remove(&(ns.to_owned(), name.to_owned()))
            && let Some(g) = inner.groups.get_mut(&old)
        {
            g.remove(name);
            if g.is_empty() {
                inner.groups.remove(&old);
            }
        }
    }

    fn insert(inner: &mut GroupedInner<K>, group: GroupKey, name: String, obj: Arc<K>) {
        inner
            .placed
            .insert((group.0.clone(), name.clone()), group.clone());
        inner.groups.entry(group).or_default().insert(name, obj);
    }

    /// Applies one watch event; `group_of` names an object's group and its own name (None: ignored).
    pub fn apply(
        &self,
        event: watcher::Event<K>,
        group_of: impl Fn(&K) -> Option<(GroupKey, String)>,
    ) {
        let mut inner = self.lock();
        match event {
            watcher::Event::Apply(obj) => {
                if let Some((group, name)) = group_of(&obj) {
                    Self::remove(&mut inner, &group.0, &name);
                    Self::insert(&mut inner, group, name, Arc::new(obj));
                }
            }
            watcher::Event::Delete(obj) => {
                if let Some((group, name)) = group_of(&obj) {
                    Self::remove(&mut inner, &group.0, &name);
                }
            }
            watcher::Event::Init => inner.relist = Some(Vec::new()),
            watcher::Event::InitApply(obj) => {
                if let Some((group, name)) = group_of(&obj) {
                    inner
                        .relist
                        .get_or_insert_with(Vec::new)
                        .push((group, name, Arc::new(obj)));
                }
            }
            watcher::Event::InitDone => {
                let listed = inner.relist.take().unwrap_or_default();
                inner.groups.clear();
                inner.placed.clear();
                for (group, name, obj) in listed {
                    Self::insert(&mut inner, group, name, obj);
                }
                drop(inner);
                self.synced.send_replace(true);
            }
        }
    }
}

/// The Jobs of every ScaledJob (label `scaledjob.keda.sh/name`) and the pods of those Jobs.
#[derive(Default)]
pub struct JobIndex {
    /// Jobs by (namespace, ScaledJob name).
    pub jobs: Grouped<Job>,
    /// Pods by (namespace, Job name).
    pub pods: Grouped<Pod>,
}

impl JobIndex {
    /// The labelled Jobs of a ScaledJob.
    pub fn jobs_of(&self, namespace: &str, scaled_job: &str) -> Vec<Arc<Job>> {
        self.jobs
            .group(&(namespace.to_owned(), scaled_job.to_owned()))
    }

    /// The pods of a Job.
    pub fn pods_of(&self, namespace: &str, job: &str) -> Vec<Arc<Pod>> {
        self.pods.group(&(namespace.to_owned(), job.to_owned()))
    }

    pub async fn wait_synced(&self) {
        self.jobs.wait_synced().await;
        self.pods.wait_synced().await;
    }

    /// Watches Jobs and pods labelled `scaledjob.keda.sh/name` (the pod template of every Job the
    /// operator creates carries it) in `namespace` (None: all), until the process ends.
    pub fn watch(self: &Arc<Self>, client: kube::Client, namespace: Option<&str>) {
        let (jobs, pods): (Api<Job>, Api<Pod>) = match namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client, ns),
            ),
            None => (Api::all(client.clone()), Api::all(client)),
        };
        let config = watcher::Config::default()
            .labels(labels::SCALED_JOB_NAME)
            .any_semantic();
        let index = self.clone();
        tokio::spawn(
            watcher(jobs, config.clone())
                .default_backoff()
                .for_each(move |event| {
                    match event {
                        Ok(e) => index.jobs.apply(e.modify(slim_job), job_group),
                        Err(e) => tracing::warn!(error = %e, "watching the Jobs of ScaledJobs"),
                    }
                    futures::future::ready(())
                }),
        );
        let index = self.clone();
        tokio::spawn(
            watcher(pods, config)
                .default_backoff()
                .for_each(move |event| {
                    match event {
                        Ok(e) => index.pods.apply(e.modify(slim_pod), pod_group),
                        Err(e) => tracing::warn!(error = %e, "watching the pods of ScaledJobs"),
                    }
                    futures::future::ready(())
                }),
        );
    }
}

/// A Job's group: its namespace and `scaledjob.keda.sh/name` label.
pub fn job_group(job: &Job) -> Option<(GroupKey, String)> {
    let m = &job.metadata;
    let owner = m.labels.as_ref()?.get(labels::SCALED_JOB_NAME)?;
    Some((
        (m.namespace.clone().unwrap_or_default(), owner.clone()),
        m.name.clone()?,
    ))
}

/// A pod's group: its namespace and `job-name` label (or `batch.kubernetes.io/job-name`).
pub fn pod_group(pod: &Pod) -> Option<(GroupKey, String)> {
    let m = &pod.metadata;
    let l = m.labels.as_ref()?;
    let job = l
        .get(JOB_NAME_LABEL)
        .or_else(|| l.get("batch.kubernetes.io/job-name"))?;
    Some((
        (m.namespace.clone().unwrap_or_default(), job.clone()),
        m.name.clone()?,
    ))
}

/// What a poll, the history cleanup and the rollout read of a Job.
pub fn slim_job(job: &mut Job) {
    let m = std::mem::take(&mut job.metadata);
    let generation = m
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::SCALED_JOB_GENERATION))
        .map(|g| BTreeMap::from([(annotations::SCALED_JOB_GENERATION.to_owned(), g.clone())]));
    let owner = m
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::SCALED_JOB_NAME))
        .map(|o| BTreeMap::from([(labels::SCALED_JOB_NAME.to_owned(), o.clone())]));
    job.metadata = ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        creation_timestamp: m.creation_timestamp,
        deletion_timestamp: m.deletion_timestamp,
        annotations: generation,
        labels: owner,
        ..Default::default()
    };
    job.spec = None;
    if let Some(s) = job.status.as_mut() {
        s.uncounted_terminated_pods = None;
    }
}

/// What the pending rule reads of a pod: its Job label, phase and conditions.
pub fn slim_pod(pod: &mut Pod) {
    let m = std::mem::take(&mut pod.metadata);
    let job_labels = m.labels.map(|l| {
        l.into_iter()
            .filter(|(k, _)| k == JOB_NAME_LABEL || k == "batch.kubernetes.io/job-name")
            .collect()
    });
    pod.metadata = ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        labels: job_labels,
        ..Default::default()
    };
    pod.spec = None;
    if let Some(s) = pod.status.as_mut() {
        let (phase, conditions) = (s.phase.take(), s.conditions.take());
        *s = Default::default();
        s.phase = phase;
        s.conditions = conditions;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(ns: &str, name: &str, owner: &str) -> Job {
        serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": ns, "name": name, "labels": {"scaledjob.keda.sh/name": owner},
                         "managedFields": [{"manager": "x"}],
                         "annotations": {"scaledjob.keda.sh/generation": "3", "big": "x"}},
            "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}},
        }))
        .expect("job")
    }

    #[test]
    fn groups_follow_events_and_relists() {
        let index: Grouped<Job> = Grouped::default();
        let apply = |e| index.apply(e, job_group);
        apply(watcher::Event::Init);
        apply(watcher::Event::InitApply(job("a", "j1", "sj")));
        apply(watcher::Event::InitApply(job("a", "j2", "sj")));
        assert!(index.is_empty(), "a re-list is applied when it is complete");
        apply(watcher::Event::InitDone);
        let key = ("a".to_owned(), "sj".to_owned());
        assert_eq!(index.group(&key).len(), 2);
        // Relabelled to another ScaledJob: leaves the first group.
        apply(watcher::Event::Apply(job("a", "j2", "other")));
        assert_eq!(index.group(&key).len(), 1);
        assert!(index.contains(&("a".to_owned(), "other".to_owned()), "j2"));
        apply(watcher::Event::Delete(job("a", "j1", "sj")));
        assert!(index.group(&key).is_empty());
        // A re-list replaces everything (objects deleted while the watch was down go).
        apply(watcher::Event::Init);
        apply(watcher::Event::InitApply(job("b", "j9", "sj")));
        apply(watcher::Event::InitDone);
        assert_eq!(index.len(), 1);
        assert!(index.contains(&("b".to_owned(), "sj".to_owned()), "j9"));
    }

    #[test]
    fn slim_objects_keep_what_decisions_read() {
        let mut j = job("a", "j1", "sj");
        slim_job(&mut j);
        assert!(j.spec.is_none());
        assert!(j.metadata.managed_fields.is_none());
        assert_eq!(
            j.metadata.annotations,
            Some(BTreeMap::from([(
                "scaledjob.keda.sh/generation".to_owned(),
                "3".to_owned()
            )]))
        );
        assert_eq!(job_group(&j).map(|g| g.1).as_deref(), Some("j1"));
        let mut p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"namespace": "a", "name": "p", "labels": {"job-name": "j1", "app": "x"}},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Pending", "hostIP": "10.0.0.1", "conditions": [{"type": "PodScheduled", "status": "True"}]},
        }))
        .expect("pod");
        slim_pod(&mut p);
        assert!(p.spec.is_none());
        let s = p.status.clone().unwrap_or_default();
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert!(s.host_ip.is_none());
        assert_eq!(s.conditions.map(|c| c.len()), Some(1));
        assert_eq!(
            pod_group(&p),
            Some((("a".to_owned(), "j1".to_owned()), "p".to_owned()))
        );
    }
}
