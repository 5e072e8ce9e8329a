//! The HPA's IO: create or update the wanted HPA (deleting the old one after a rename), and delete it.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_api::ScaledObject;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};

use crate::Context;
use crate::error::Error;

pub(super) async fn apply_hpa(
    ctx: &Context,
    so: &ScaledObject,
    desired: &HorizontalPodAutoscaler,
) -> Result<(), Error> {
    let ns = so.namespace().unwrap_or_default();
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), &ns);
    let name = desired.name_any();
    // A rename (advanced.horizontalPodAutoscalerConfig.name changed) deletes the old HPA.
    if let Some(old) = so.status.as_ref().and_then(|s| s.hpa_name.as_ref())
        && *old != name
    {
        match api.delete(old, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                return Err(Error::kube(
                    format!("deleting the renamed HPA {ns}/{old}"),
                    e,
                ));
            }
        }
    }
    match api
        .get_opt(&name)
        .await
        .map_err(|e| Error::kube(format!("reading HPA {ns}/{name}"), e))?
    {
        None => {
            api.create(&PostParams::default(), desired)
                .await
                .map_err(|e| Error::kube(format!("creating HPA {ns}/{name}"), e))?;
            tracing::info!(namespace = %ns, hpa = %name, "created HPA");
        }
        Some(existing) if keda_core::hpa::hpa_needs_update(&existing, desired) => {
            let mut updated = desired.clone();
            updated.metadata.resource_version = existing.metadata.resource_version.clone();
            api.replace(&name, &PostParams::default(), &updated)
                .await
                .map_err(|e| Error::kube(format!("updating HPA {ns}/{name}"), e))?;
            tracing::info!(namespace = %ns, hpa = %name, "updated HPA");
        }
        Some(_) => {}
    }
    Ok(())
}

pub(super) async fn delete_hpa(ctx: &Context, so: &ScaledObject) -> Result<(), Error> {
    let ns = so.namespace().unwrap_or_default();
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), &ns);
    let name = so
        .status
        .as_ref()
        .and_then(|s| s.hpa_name.clone())
        .unwrap_or_else(|| so.hpa_name());
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(Error::kube(format!("deleting HPA {ns}/{name}"), e)),
    }
}
