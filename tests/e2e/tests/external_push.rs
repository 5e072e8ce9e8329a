//! `external-push` on the local control plane: a ScaledObject with `minReplicaCount: 0` and a
//! `pollingInterval` of 300 s whose external scaler (a gRPC server implementing upstream's
//! `externalscaler.proto`, run by this test) answers `IsActive: false` to every poll and then pushes an
//! activation on `StreamIsActive`. The operator must scale the Deployment 0 → 1 on the push itself, as
//! upstream's scale handler asks the executor at once, not at the next poll minutes later.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use keda_e2e::{KedaProcess, apply, client, ensure_crds, namespace, spec_replicas, wait_for};
use keda_proto::externalscaler::external_scaler_server::{ExternalScaler, ExternalScalerServer};
use keda_proto::externalscaler::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec,
    MetricValue, ScaledObjectRef,
};
use kube::Api;
use tonic::{Request, Response, Status};

const T: Duration = Duration::from_secs(60);

/// Never active when polled; activations only come as pushes.
#[derive(Clone)]
struct PushOnly {
    push: tokio::sync::broadcast::Sender<bool>,
    refs: Arc<std::sync::Mutex<Vec<ScaledObjectRef>>>,
}

type PushStream = Pin<Box<dyn futures::Stream<Item = Result<IsActiveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ExternalScaler for PushOnly {
    async fn is_active(
        &self,
        _: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        Ok(Response::new(IsActiveResponse { result: false }))
    }

    type StreamIsActiveStream = PushStream;

    async fn stream_is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<PushStream>, Status> {
        if let Ok(mut r) = self.refs.lock() {
            r.push(request.into_inner());
        }
        let rx = self.push.subscribe();
        Ok(Response::new(Box::pin(futures::stream::unfold(
            rx,
            |mut rx| async move {
                loop {
                    match rx.recv().await {
                        Ok(result) => return Some((Ok(IsActiveResponse { result }), rx)),
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return None,
                    }
                }
            },
        ))))
    }

    async fn get_metric_spec(
        &self,
        _: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        Ok(Response::new(GetMetricSpecResponse {
            metric_specs: vec![MetricSpec {
                metric_name: "pending".into(),
                target_size: 0,
                target_size_float: 10.0,
            }],
        }))
    }

    async fn get_metrics(
        &self,
        r: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        Ok(Response::new(GetMetricsResponse {
            metric_values: vec![MetricValue {
                metric_name: r.into_inner().metric_name,
                metric_value: 0,
                metric_value_float: 0.0,
            }],
        }))
    }
}

#[tokio::test]
async fn a_pushed_activation_scales_from_zero_without_waiting_for_the_poll() -> Result<()> {
    ensure_crds().await?;
    let c = client().await?;
    let ns = namespace(&c, "ext-push").await?;
    let _op = KedaProcess::operator(&ns, "op-a")?;

    let backend = PushOnly {
        push: tokio::sync::broadcast::channel(16).0,
        refs: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let service = ExternalScalerServer::new(backend.clone());
    tokio::spawn(async move {
        let incoming = futures::stream::unfold(listener, |l| async move {
            let conn = l.accept().await.map(|(s, _)| s);
            Some((conn, l))
        });
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await;
    });

    apply(
        &ns,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: worker}\nspec:\n  replicas: 0\n  selector: {matchLabels: {app: worker}}\n  template:\n    metadata: {labels: {app: worker}}\n    spec:\n      containers: [{name: app, image: example/app:1}]\n",
    )?;
    apply(
        &ns,
        &format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: worker}}\nspec:\n  scaleTargetRef: {{name: worker}}\n  pollingInterval: 300\n  minReplicaCount: 0\n  triggers:\n  - type: external-push\n    metadata: {{scalerAddress: \"{addr}\", queue: orders}}\n"
        ),
    )?;

    // The HPA carries the server's metric (GetMetricSpec), prefixed with the trigger index.
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.clone(), &ns);
    let hpa = wait_for(&hpas, "keda-hpa-worker", T, |_| true).await?;
    let metric = hpa
        .spec
        .and_then(|s| s.metrics)
        .and_then(|m| m.into_iter().next())
        .and_then(|m| m.external)
        .map(|e| (e.metric.name, e.target.average_value.map(|q| q.0)));
    assert_eq!(
        metric,
        Some(("s0-pending".to_owned(), Some("10".to_owned())))
    );

    // The operator listens from the start of the object's loop.
    let deadline = Instant::now() + T;
    while backend.push.receiver_count() == 0 {
        anyhow::ensure!(Instant::now() < deadline, "StreamIsActive never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    {
        let refs = backend.refs.lock().map(|r| r.clone()).unwrap_or_default();
        let r = refs.first().expect("a stream request");
        assert_eq!(
            (r.name.as_str(), r.namespace.as_str()),
            ("worker", ns.as_str())
        );
        assert_eq!(
            r.scaler_metadata.get("queue").map(String::as_str),
            Some("orders")
        );
    }
    assert_eq!(spec_replicas(&c, &ns, "worker").await?, 0);

    let pushed = Instant::now();
    backend.push.send(true)?;
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), &ns);
    wait_for(&deployments, "worker", T, |d| {
        d.spec.as_ref().and_then(|s| s.replicas) == Some(1)
    })
    .await?;
    let took = pushed.elapsed();
    println!("push -> Deployment at 1 replica: {took:?} (pollingInterval 300 s)");
    assert!(
        took < Duration::from_secs(30),
        "the push waited for a poll: {took:?}"
    );
    Ok(())
}
