//! Watches of ScaledObjects and HPAs (cluster-wide) that keep the [`Index`] current.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_api::ScaledObject;
use kube::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use crate::index::Index;

fn key(meta: &kube::api::ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Runs both watches until the process ends; `synced` turns true once both listed once.
pub async fn run(client: kube::Client, index: Arc<Index>, synced: Arc<AtomicBool>) {
    let so_synced = Arc::new(AtomicBool::new(false));
    let hpa_synced = Arc::new(AtomicBool::new(false));
    let mark = {
        let (a, b, s) = (so_synced.clone(), hpa_synced.clone(), synced.clone());
        move || {
            if a.load(Ordering::SeqCst) && b.load(Ordering::SeqCst) {
                s.store(true, Ordering::SeqCst);
            }
        }
    };
    let so_stream = {
        let index = index.clone();
        let mark = mark.clone();
        let mut seen = BTreeSet::new();
        watcher::watcher(
            Api::<ScaledObject>::all(client.clone()),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .for_each(move |ev| {
            match ev {
                Ok(Event::Init) => seen.clear(),
                Ok(Event::InitApply(so)) => {
                    seen.insert(key(&so.metadata));
                    index.apply_scaled_object(&so);
                }
                Ok(Event::InitDone) => {
                    index.retain_scaled_objects(&seen);
                    seen.clear();
                    so_synced.store(true, Ordering::SeqCst);
                    mark();
                }
                Ok(Event::Apply(so)) => index.apply_scaled_object(&so),
                Ok(Event::Delete(so)) => {
                    let (ns, name) = key(&so.metadata);
                    index.delete_scaled_object(&ns, &name);
                }
                Err(e) => tracing::warn!(error = %e, "watching ScaledObjects"),
            }
            futures::future::ready(())
        })
    };
    let hpa_stream = {
        let mut seen = BTreeSet::new();
        watcher::watcher(
            Api::<HorizontalPodAutoscaler>::all(client),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .for_each(move |ev| {
            match ev {
                Ok(Event::Init) => seen.clear(),
                Ok(Event::InitApply(hpa)) => {
                    seen.insert(key(&hpa.metadata));
                    index.apply_hpa(&hpa);
                }
                Ok(Event::InitDone) => {
                    index.retain_hpas(&seen);
                    seen.clear();
                    hpa_synced.store(true, Ordering::SeqCst);
                    mark();
                }
                Ok(Event::Apply(hpa)) => index.apply_hpa(&hpa),
                Ok(Event::Delete(hpa)) => {
                    let (ns, name) = key(&hpa.metadata);
                    index.delete_hpa(&ns, &name);
                }
                Err(e) => tracing::warn!(error = %e, "watching HPAs"),
            }
            futures::future::ready(())
        })
    };
    futures::join!(so_stream, hpa_stream);
}
