//! What the ALB warning reads (Services, Ingresses, the AWS Load Balancer Controller's IngressClasses),
//! kept from watches instead of listed on every admission. Only what the check looks at is stored: a
//! Service's selector (Services without one select no pods and are left out), an Ingress's class, ALB
//! annotation and backend Service names ([`IngressInfo`]), and whether an IngressClass belongs to the ALB
//! controller. An admission reads one namespace's entries, and only when that namespace has an Ingress.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use keda_check::advice::{self, Exposure, IngressInfo, ServiceInfo};
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

type Selector = BTreeMap<String, String>;

#[derive(Default)]
struct Inner {
    /// Namespace → Service name → selector.
    services: HashMap<String, BTreeMap<String, Selector>>,
    /// Namespace → Ingress name → what the check reads of it.
    ingresses: HashMap<String, BTreeMap<String, IngressInfo>>,
    /// IngressClass name → its controller is the ALB controller.
    classes: BTreeMap<String, bool>,
}

/// Services, Ingresses and IngressClasses by watch; [`ExposureCache::exposure`] answers once all three
/// listed.
#[derive(Default)]
pub struct ExposureCache {
    inner: RwLock<Inner>,
    services_synced: AtomicBool,
    ingresses_synced: AtomicBool,
    classes_synced: AtomicBool,
}

fn meta_key(meta: &kube::api::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

impl ExposureCache {
    pub fn new() -> ExposureCache {
        ExposureCache::default()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn apply_service(&self, svc: &Service) {
        let info = ServiceInfo::from_service(svc);
        let mut inner = self.write();
        if info.selector.is_empty() {
            Self::remove(&mut inner.services, &info.namespace, &info.name);
        } else {
            inner
                .services
                .entry(info.namespace)
                .or_default()
                .insert(info.name, info.selector);
        }
    }

    pub fn delete_service(&self, namespace: &str, name: &str) {
        Self::remove(&mut self.write().services, namespace, name);
    }

    pub fn apply_ingress(&self, ing: &Ingress) {
        let info = IngressInfo::from_ingress(ing);
        self.write()
            .ingresses
            .entry(info.namespace.clone())
            .or_default()
            .insert(info.name.clone(), info);
    }

    pub fn delete_ingress(&self, namespace: &str, name: &str) {
        Self::remove(&mut self.write().ingresses, namespace, name);
    }

    pub fn apply_class(&self, class: &IngressClass) {
        let alb = class.spec.as_ref().and_then(|s| s.controller.as_deref())
            == Some(advice::ALB_CONTROLLER);
        self.write()
            .classes
            .insert(class.metadata.name.clone().unwrap_or_default(), alb);
    }

    pub fn delete_class(&self, name: &str) {
        self.write().classes.remove(name);
    }

    fn remove<V>(map: &mut HashMap<String, BTreeMap<String, V>>, namespace: &str, name: &str) {
        if let Some(names) = map.get_mut(namespace) {
            names.remove(name);
            if names.is_empty() {
                map.remove(namespace);
            }
        }
    }

    fn retain_listed<V>(
        map: &mut HashMap<String, BTreeMap<String, V>>,
        listed: &BTreeSet<(String, String)>,
    ) {
        map.retain(|ns, names| {
            names.retain(|name, _| listed.contains(&(ns.clone(), name.clone())));
            !names.is_empty()
        });
    }

    /// After a (re-)list: forgets the Services that were not listed (deleted while the watch was down).
    pub fn retain_services(&self, listed: &BTreeSet<(String, String)>) {
        Self::retain_listed(&mut self.write().services, listed);
        self.services_synced.store(true, Ordering::SeqCst);
    }

    pub fn retain_ingresses(&self, listed: &BTreeSet<(String, String)>) {
        Self::retain_listed(&mut self.write().ingresses, listed);
        self.ingresses_synced.store(true, Ordering::SeqCst);
    }

    pub fn retain_classes(&self, listed: &BTreeSet<(String, String)>) {
        self.write()
            .classes
            .retain(|name, _| listed.contains(&(String::new(), name.clone())));
        self.classes_synced.store(true, Ordering::SeqCst);
    }

    /// Whether all three watches listed once.
    pub fn synced(&self) -> bool {
        self.services_synced.load(Ordering::SeqCst)
            && self.ingresses_synced.load(Ordering::SeqCst)
            && self.classes_synced.load(Ordering::SeqCst)
    }

    /// The Services and Ingresses of `namespace` and the ALB IngressClasses, for
    /// [`Exposure::alb_exposure`]. Without an Ingress in the namespace nothing can be exposed through
    /// one, and no Service is copied. An error until the watches listed once.
    pub fn exposure(&self, namespace: &str) -> Result<Exposure, String> {
        if !self.synced() {
            return Err("the Service and Ingress watches have not listed yet".to_owned());
        }
        let inner = self.read();
        let Some(ingresses) = inner.ingresses.get(namespace).filter(|i| !i.is_empty()) else {
            return Ok(Exposure::default());
        };
        let services = inner
            .services
            .get(namespace)
            .into_iter()
            .flatten()
            .map(|(name, selector)| ServiceInfo {
                namespace: namespace.to_owned(),
                name: name.clone(),
                selector: selector.clone(),
            })
            .collect();
        Ok(Exposure {
            services,
            ingresses: ingresses.values().cloned().collect(),
            alb_classes: inner
                .classes
                .iter()
                .filter(|(_, alb)| **alb)
                .map(|(name, _)| name.clone())
                .collect(),
        })
    }

    /// Services and Ingresses held (for tests and telemetry).
    pub fn len(&self) -> (usize, usize) {
        let inner = self.read();
        (
            inner.services.values().map(BTreeMap::len).sum(),
            inner.ingresses.values().map(BTreeMap::len).sum(),
        )
    }
}

/// Feeds one watch into the cache: `apply` per object, `delete` per deletion, `retain` after each
/// (re-)list with the objects listed.
async fn feed<K>(
    api: Api<K>,
    what: &'static str,
    apply: impl Fn(&K),
    delete: impl Fn(&str, &str),
    retain: impl Fn(&BTreeSet<(String, String)>),
) where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static,
{
    let mut listed = BTreeSet::new();
    watcher::watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .for_each(|ev| {
            match ev {
                Ok(Event::Init) => listed.clear(),
                Ok(Event::InitApply(o)) => {
                    listed.insert(meta_key(o.meta()));
                    apply(&o);
                }
                Ok(Event::InitDone) => {
                    retain(&listed);
                    listed.clear();
                }
                Ok(Event::Apply(o)) => apply(&o),
                Ok(Event::Delete(o)) => {
                    let (ns, name) = meta_key(o.meta());
                    delete(&ns, &name);
                }
                Err(e) => tracing::warn!(error = %e, "watching {what}"),
            }
            futures::future::ready(())
        })
        .await;
}

/// Runs the three watches until the process ends.
pub async fn run(client: kube::Client, cache: std::sync::Arc<ExposureCache>) {
    let c = &cache;
    futures::join!(
        feed(
            Api::<Service>::all(client.clone()),
            "Services",
            |s| c.apply_service(s),
            |ns, n| c.delete_service(ns, n),
            |l| c.retain_services(l),
        ),
        feed(
            Api::<Ingress>::all(client.clone()),
            "Ingresses",
            |i| c.apply_ingress(i),
            |ns, n| c.delete_ingress(ns, n),
            |l| c.retain_ingresses(l),
        ),
        feed(
            Api::<IngressClass>::all(client),
            "IngressClasses",
            |k| c.apply_class(k),
            |_, n| c.delete_class(n),
            |l| c.retain_classes(l),
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(ns: &str, name: &str, app: Option<&str>) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"selector": app.map(|a| json!({"app": a}))}
        }))
        .expect("Service")
    }

    fn ingress(ns: &str, name: &str, class: &str, backend: &str) -> Ingress {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": {"ingressClassName": class, "rules": [{"http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": backend, "port": {"number": 80}}}}
            ]}}]}
        }))
        .expect("Ingress")
    }

    fn class(name: &str, controller: &str) -> IngressClass {
        serde_json::from_value(
            json!({"metadata": {"name": name}, "spec": {"controller": controller}}),
        )
        .expect("IngressClass")
    }

    fn synced() -> ExposureCache {
        let c = ExposureCache::new();
        c.retain_services(&BTreeSet::new());
        c.retain_ingresses(&BTreeSet::new());
        c.retain_classes(&BTreeSet::new());
        c
    }

    fn labels(app: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("app".to_owned(), app.to_owned())])
    }

    #[test]
    fn nothing_is_answered_before_the_watches_listed() {
        let c = ExposureCache::new();
        c.retain_services(&BTreeSet::new());
        c.retain_ingresses(&BTreeSet::new());
        assert!(c.exposure("shop").is_err());
        c.retain_classes(&BTreeSet::new());
        assert_eq!(c.exposure("shop"), Ok(Exposure::default()));
    }

    #[test]
    fn watch_events_keep_what_the_alb_check_reads() {
        let c = synced();
        c.apply_service(&service("shop", "web", Some("web")));
        c.apply_service(&service("shop", "headless", None));
        c.apply_service(&service("other", "web", Some("web")));
        // No Ingress yet: nothing exposed, no Service copied.
        assert_eq!(c.exposure("shop"), Ok(Exposure::default()));
        c.apply_class(&class("internet", advice::ALB_CONTROLLER));
        c.apply_class(&class("nginx", "k8s.io/ingress-nginx"));
        c.apply_ingress(&ingress("shop", "public", "internet", "web"));
        let e = c.exposure("shop").expect("synced");
        assert_eq!(
            e.services.len(),
            1,
            "Services without a selector are not kept"
        );
        assert_eq!(e.alb_classes, BTreeSet::from(["internet".to_owned()]));
        let (ing, svc) = e.alb_exposure("shop", &labels("web")).expect("exposed");
        assert_eq!((ing.name.as_str(), svc), ("public", "web"));
        // The class changes controller, the Ingress is deleted: no longer exposed.
        c.apply_class(&class("internet", "k8s.io/ingress-nginx"));
        assert!(
            c.exposure("shop")
                .expect("synced")
                .alb_exposure("shop", &labels("web"))
                .is_none()
        );
        c.delete_ingress("shop", "public");
        c.delete_service("shop", "web");
        assert_eq!(c.len(), (1, 0));
    }

    /// Objects deleted while a watch was down are forgotten by the re-list.
    #[test]
    fn a_relist_forgets_what_is_gone() {
        let c = synced();
        for i in 0..50 {
            c.apply_service(&service("shop", &format!("s{i}"), Some("x")));
            c.apply_ingress(&ingress("shop", &format!("i{i}"), "alb", &format!("s{i}")));
        }
        assert_eq!(c.len(), (50, 50));
        let kept = BTreeSet::from([("shop".to_owned(), "s1".to_owned())]);
        c.retain_services(&kept);
        c.retain_ingresses(&BTreeSet::new());
        assert_eq!(c.len(), (1, 0));
        c.apply_class(&class("gone", advice::ALB_CONTROLLER));
        c.retain_classes(&BTreeSet::new());
        assert!(c.read().classes.is_empty());
    }
}
