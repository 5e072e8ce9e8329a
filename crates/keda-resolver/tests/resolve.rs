//! Table-driven tests of env and authentication resolution over an in-memory object source.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use keda_api::{ScaleTriggers, TriggerAuthenticationSpec};
use keda_resolver::{
    Absent, AbsentPolicy, MemorySource, ObjectRef, ResolveError, ResolvedEnv, Resolver, expand,
};

const NS: &str = "apps";
const KEDA_NS: &str = "keda";

fn pod(yaml: &str) -> PodSpec {
    serde_yaml_ng::from_str(yaml).expect("valid pod spec")
}

fn ta(yaml: &str) -> TriggerAuthenticationSpec {
    serde_yaml_ng::from_str(yaml).expect("valid TriggerAuthentication spec")
}

fn trigger(yaml: &str) -> ScaleTriggers {
    serde_yaml_ng::from_str(yaml).expect("valid trigger")
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The objects every case can refer to.
fn source(absent: AbsentPolicy) -> MemorySource {
    MemorySource::new(absent)
        .with_secret(NS, "db", [("password", "s3cret"), ("user", "app")])
        .with_secret(KEDA_NS, "shared", [("token", "cluster-token")])
        .with_secret(NS, "shared", [("token", "namespace-token")])
        .with_config_map(
            NS,
            "settings",
            [("HOST", "redis.apps"), ("PORT", "6379"), ("mode", "fast")],
        )
        .with_config_map(KEDA_NS, "global", [("region", "eu-west-1")])
        .with_trigger_authentication(
            NS,
            "seed",
            ta("secretTargetRef:
- {parameter: password, name: db, key: password}
- {parameter: user, name: db, key: user}"),
        )
        .with_cluster_trigger_authentication(
            "global",
            ta(
                "secretTargetRef: [{parameter: token, name: shared, key: token}]
configMapTargetRef: [{parameter: region, name: global, key: region}]",
            ),
        )
        .with_service_account(
            NS,
            "worker",
            [("eks.amazonaws.com/role-arn", "arn:aws:iam::1:role/worker")],
        )
        .with_service_account(NS, "default", [("other", "x")])
}

fn resolver(absent: AbsentPolicy) -> Resolver<MemorySource> {
    Resolver::new(source(absent), KEDA_NS)
}

#[test]
fn expansion_follows_kubernetes() {
    let vars = map(&[("A", "alpha"), ("B", "beta"), ("EMPTY", "")]);
    let lookup = |name: &str| match name {
        "UNKNOWN" => Some(None),
        _ => vars.get(name).map(|v| Some(v.as_str())),
    };
    let cases: &[(&str, &str, bool)] = &[
        ("plain", "plain", false),
        ("$(A)", "alpha", false),
        ("x-$(A)-$(B)-y", "x-alpha-beta-y", false),
        ("$$(A)", "$(A)", false),
        ("$$$", "$$", false),
        ("$(MISSING)", "$(MISSING)", false),
        ("$(EMPTY)!", "!", false),
        ("$(unclosed", "$(unclosed", false),
        ("$A", "$A", false),
        ("tail$", "tail$", false),
        ("é$é$(A)", "é$éalpha", false),
        ("$()", "$()", false),
        ("$(UNKNOWN)/x", "$(UNKNOWN)/x", true),
    ];
    for (input, want, unknown) in cases {
        assert_eq!(
            expand(input, lookup),
            (want.to_string(), *unknown),
            "expanding {input:?}"
        );
    }
}

const POD: &str = "
serviceAccountName: worker
containers:
- name: app
  envFrom:
  - configMapRef: {name: settings}
    prefix: CFG_
  - secretRef: {name: db}
  env:
  - {name: URL, value: 'redis://$(CFG_HOST):$(CFG_PORT)/$(NOPE)'}
  - {name: password, value: overridden}
  - name: PASS
    valueFrom: {secretKeyRef: {name: db, key: password}}
  - name: MODE
    valueFrom: {configMapKeyRef: {name: settings, key: mode}}
  - name: OPTIONAL_MISSING_KEY
    valueFrom: {secretKeyRef: {name: db, key: nope, optional: true}}
  - name: OPTIONAL_MISSING_CM
    valueFrom: {configMapKeyRef: {name: nowhere, key: x, optional: true}}
  - name: POD_NAME
    valueFrom: {fieldRef: {fieldPath: metadata.name}}
  - {name: BLANK}
- name: sidecar
  env:
  - {name: SIDE, value: car}
";

#[tokio::test]
async fn container_env_resolves_like_the_kubelet() {
    let r = resolver(AbsentPolicy::default());
    let env = r
        .container_env(NS, &pod(POD), None)
        .await
        .expect("resolves");
    assert_eq!(env.container.as_deref(), Some("app"));
    let want = map(&[
        ("BLANK", ""),
        ("CFG_HOST", "redis.apps"),
        ("CFG_PORT", "6379"),
        ("CFG_mode", "fast"),
        ("MODE", "fast"),
        ("PASS", "s3cret"),
        ("URL", "redis://redis.apps:6379/$(NOPE)"),
        ("password", "overridden"),
        ("user", "app"),
    ]);
    assert_eq!(env.vars, want);
    assert!(env.assumed.is_empty() && !env.incomplete);
    assert_eq!(env.notes.len(), 1, "{:?}", env.notes);
    assert!(env.notes[0].contains("POD_NAME"));

    let side = r
        .container_env(NS, &pod(POD), Some("sidecar"))
        .await
        .expect("resolves");
    assert_eq!(side.vars, map(&[("SIDE", "car")]));
}

#[tokio::test]
async fn container_env_errors_name_what_is_missing() {
    let r = resolver(AbsentPolicy::default());
    let cases: &[(&str, Option<&str>, &str)] = &[
        (
            POD,
            Some("web"),
            r#"container "web" not found in the scale target (it has containers "app", "sidecar")"#,
        ),
        ("containers: []", None, "the scale target has no containers"),
        (
            "containers: [{name: a, env: [{name: X, valueFrom: {secretKeyRef: {name: db, key: nope}}}]}]",
            None,
            r#"Secret apps/db has no key "nope" (referenced by env X of container "a")"#,
        ),
        (
            "containers: [{name: a, env: [{name: X, valueFrom: {secretKeyRef: {name: gone, key: k}}}]}]",
            None,
            r#"Secret apps/gone not found (referenced by env X of container "a")"#,
        ),
        (
            "containers: [{name: a, env: [{name: X, valueFrom: {configMapKeyRef: {name: settings, key: nope}}}]}]",
            None,
            r#"ConfigMap apps/settings has no key "nope" (referenced by env X of container "a")"#,
        ),
        (
            "containers: [{name: a, envFrom: [{configMapRef: {name: gone}}]}]",
            None,
            r#"ConfigMap apps/gone not found (referenced by envFrom[0] of container "a")"#,
        ),
    ];
    for (spec, container, want) in cases {
        let err = r
            .container_env(NS, &pod(spec), *container)
            .await
            .expect_err("must fail");
        assert_eq!(err.to_string(), *want);
        assert!(err.is_permanent());
    }
    // Optional envFrom sources may be absent.
    let env = r
        .container_env(
            NS,
            &pod("containers: [{name: a, envFrom: [{configMapRef: {name: gone, optional: true}}, {secretRef: {name: gone, optional: true}}]}]"),
            None,
        )
        .await
        .expect("optional sources may be absent");
    assert!(env.vars.is_empty());
}

#[tokio::test]
async fn assumed_objects_make_values_unknown_not_missing() {
    let r = resolver(AbsentPolicy::assume_all());
    let env = r
        .container_env(
            NS,
            &pod("containers:
- name: a
  envFrom: [{secretRef: {name: external}}]
  env:
  - name: KEY
    valueFrom: {secretKeyRef: {name: vault-synced, key: api-key}}
  - {name: DSN, value: 'https://$(KEY)@host'}
  - {name: FIXED, value: 'x'}"),
            None,
        )
        .await
        .expect("resolves");
    assert!(env.incomplete);
    assert_eq!(env.vars, map(&[("FIXED", "x")]));
    assert!(env.assumed.contains("KEY") && env.assumed.contains("DSN"));
    assert!(env.is_assumed("ANYTHING_FROM_ENVFROM"));
    assert!(!env.is_assumed("FIXED"));
    assert_eq!(
        env.assumed_objects.iter().cloned().collect::<Vec<_>>(),
        vec![
            ObjectRef::new("Secret", NS, "external"),
            ObjectRef::new("Secret", NS, "vault-synced"),
        ]
    );
    // A key missing from a Secret that is known stays an error even when absent objects are assumed.
    let err = r
        .container_env(
            NS,
            &pod("containers: [{name: a, env: [{name: X, valueFrom: {secretKeyRef: {name: db, key: nope}}}]}]"),
            None,
        )
        .await
        .expect_err("known Secret without the key");
    assert!(matches!(err, ResolveError::KeyNotFound { .. }));
}

#[tokio::test]
async fn restricted_secret_access_skips_secrets_outside_the_keda_namespace() {
    let r = resolver(AbsentPolicy::default()).with_restrict_secret_access(true);
    let spec = pod("containers:
- name: a
  envFrom: [{secretRef: {name: shared}}]
  env:
  - name: T
    valueFrom: {secretKeyRef: {name: shared, key: token}}
  - name: M
    valueFrom: {configMapKeyRef: {name: settings, key: mode}}");
    let env = r.container_env(NS, &spec, None).await.expect("resolves");
    assert_eq!(env.vars, map(&[("M", "fast")]));
    assert_eq!(env.notes.len(), 2);
    // In the KEDA namespace itself Secrets are readable.
    let spec = pod("containers: [{name: a, envFrom: [{secretRef: {name: shared}}]}]");
    let env = r
        .container_env(KEDA_NS, &spec, None)
        .await
        .expect("resolves");
    assert_eq!(env.vars, map(&[("token", "cluster-token")]));
}

struct AuthCase {
    name: &'static str,
    ta: Option<(&'static str, &'static str)>,
    trigger: &'static str,
    restrict: bool,
    absent: AbsentPolicy,
    want: Result<&'static [(&'static str, &'static str)], &'static str>,
}

fn case(name: &'static str, trigger: &'static str) -> AuthCase {
    AuthCase {
        name,
        ta: None,
        trigger,
        restrict: false,
        absent: AbsentPolicy::default(),
        want: Ok(&[]),
    }
}

#[tokio::test]
async fn auth_params_table() {
    let cases = vec![
        case("no authenticationRef", "{type: cron, metadata: {}}"),
        AuthCase {
            want: Ok(&[("password", "s3cret"), ("user", "app")]),
            ..case("seed-style secretTargetRef", "{type: x, authenticationRef: {name: seed}}")
        },
        AuthCase {
            want: Err("TriggerAuthentication apps/missing not found (authenticationRef of the trigger)"),
            ..case("missing TriggerAuthentication", "{type: x, authenticationRef: {name: missing}}")
        },
        AuthCase {
            want: Err("ClusterTriggerAuthentication nope not found (authenticationRef of the trigger)"),
            ..case(
                "missing ClusterTriggerAuthentication",
                "{type: x, authenticationRef: {name: nope, kind: ClusterTriggerAuthentication}}",
            )
        },
        AuthCase {
            want: Ok(&[("region", "eu-west-1"), ("token", "cluster-token")]),
            ..case(
                "CTA objects come from the cluster-object namespace",
                "{type: x, authenticationRef: {name: global, kind: ClusterTriggerAuthentication}}",
            )
        },
        AuthCase {
            ta: Some(("order", "configMapTargetRef: [{parameter: p, name: settings, key: mode}]
secretTargetRef: [{parameter: p, name: db, key: user}]
env: [{parameter: p, name: MODE}, {parameter: side, name: SIDE, containerName: sidecar}, {parameter: absent, name: NOT_SET}]")),
            want: Ok(&[("absent", ""), ("p", "app"), ("side", "car")]),
            ..case("env, then configMaps, then Secrets", "{type: x, authenticationRef: {name: order}}")
        },
        AuthCase {
            ta: Some(("badkey", "secretTargetRef: [{parameter: apiKey, name: db, key: apiKey}]")),
            want: Err(r#"Secret apps/db has no key "apiKey" (referenced by secretTargetRef[0] (parameter apiKey) of TriggerAuthentication apps/badkey)"#),
            ..case("a Secret without the key", "{type: x, authenticationRef: {name: badkey}}")
        },
        AuthCase {
            ta: Some(("nosecret", "secretTargetRef: [{parameter: apiKey, name: gone, key: apiKey}]")),
            want: Err("Secret apps/gone not found (referenced by secretTargetRef[0] (parameter apiKey) of TriggerAuthentication apps/nosecret)"),
            ..case("a missing Secret", "{type: x, authenticationRef: {name: nosecret}}")
        },
        AuthCase {
            ta: Some(("badcm", "configMapTargetRef: [{parameter: p, name: settings, key: nope}]")),
            want: Err(r#"ConfigMap apps/settings has no key "nope" (referenced by configMapTargetRef[0] (parameter p) of TriggerAuthentication apps/badcm)"#),
            ..case("a ConfigMap without the key", "{type: x, authenticationRef: {name: badcm}}")
        },
        AuthCase {
            ta: Some(("shared", "secretTargetRef: [{parameter: token, name: shared, key: token}]")),
            restrict: true,
            want: Ok(&[("token", "cluster-token")]),
            ..case(
                "restricted secret access reads TA Secrets from the KEDA namespace",
                "{type: x, authenticationRef: {name: shared}}",
            )
        },
        AuthCase {
            ta: Some(("aws", "podIdentity: {provider: aws, roleArn: 'arn:aws:iam::1:role/keda'}")),
            want: Ok(&[("awsRoleArn", "arn:aws:iam::1:role/keda")]),
            ..case("aws roleArn", "{type: x, authenticationRef: {name: aws}}")
        },
        AuthCase {
            ta: Some(("awsw", "podIdentity: {provider: aws, identityOwner: workload}")),
            want: Ok(&[("awsRoleArn", "arn:aws:iam::1:role/worker")]),
            ..case("aws workload identity reads the ServiceAccount", "{type: x, authenticationRef: {name: awsw}}")
        },
        AuthCase {
            ta: Some(("awsbad", "podIdentity: {provider: aws, roleArn: r, identityOwner: workload}")),
            want: Err("TriggerAuthentication apps/awsbad: podIdentity: roleArn (r) can't be set when identityOwner is workload"),
            ..case("aws roleArn with workload owner", "{type: x, authenticationRef: {name: awsbad}}")
        },
        AuthCase {
            ta: Some(("azure", "podIdentity: {provider: azure-workload, identityId: ''}")),
            want: Err("TriggerAuthentication apps/azure: podIdentity: identityId must not be empty when it is set"),
            ..case("azure empty identityId", "{type: x, authenticationRef: {name: azure}}")
        },
        AuthCase {
            ta: Some(("azurewi", "podIdentity: {provider: azure-workload}")),
            want: Err("TriggerAuthentication apps/azurewi: podIdentity provider azure-workload is not supported by keda-rs yet"),
            ..case("azure workload identity is refused, never unauthenticated", "{type: x, authenticationRef: {name: azurewi}}")
        },
        AuthCase {
            ta: Some(("gcp", "podIdentity: {provider: gcp}")),
            want: Err("TriggerAuthentication apps/gcp: podIdentity provider gcp is not supported by keda-rs yet"),
            ..case("gcp workload identity is refused, never unauthenticated", "{type: x, authenticationRef: {name: gcp}}")
        },
        AuthCase {
            ta: Some(("vault", "hashiCorpVault: {address: 'http://vault', authentication: token, secrets: [{parameter: p, path: x, key: y}]}")),
            want: Err("TriggerAuthentication apps/vault: hashiCorpVault is not supported by keda-rs yet"),
            ..case("vault is not supported yet", "{type: x, authenticationRef: {name: vault}}")
        },
        AuthCase {
            ta: Some(("bsat", "boundServiceAccountToken: [{parameter: t, serviceAccountName: worker}]")),
            want: Err("TriggerAuthentication apps/bsat: boundServiceAccountToken is not supported by keda-rs yet"),
            ..case("bound tokens are not supported yet", "{type: x, authenticationRef: {name: bsat}}")
        },
        AuthCase {
            ta: Some(("oauth", "oauth2:
  clientId: keda
  tokenUrl: https://idp/token
  clientSecret: {valueFrom: {secretKeyRef: {name: db, key: password}}}
  scopes: [read, write]
  tokenUrlParams: {audience: 'api://x', b: 'a b'}")),
            want: Ok(&[
                ("clientID", "keda"),
                ("clientSecret", "s3cret"),
                ("endpointParams", "audience=api%3A%2F%2Fx&b=a+b"),
                ("oauthTokenURI", "https://idp/token"),
                ("scopes", "read,write"),
            ]),
            ..case("oauth2 client credentials", "{type: x, authenticationRef: {name: oauth}}")
        },
    ];

    for c in cases {
        let mut source = source(c.absent);
        if let Some((name, spec)) = c.ta {
            source = source.with_trigger_authentication(NS, name, ta(spec));
        }
        let r = Resolver::new(source, KEDA_NS).with_restrict_secret_access(c.restrict);
        let spec = pod(POD);
        let env = r.container_env(NS, &spec, None).await.expect("env");
        let got = r
            .auth_params(NS, &trigger(c.trigger), &env, Some(&spec))
            .await;
        match (got, c.want) {
            (Ok(auth), Ok(want)) => {
                assert_eq!(auth.params, map(want), "case {:?}", c.name);
                assert!(
                    auth.assumed.is_empty() && !auth.incomplete,
                    "case {:?}",
                    c.name
                );
            }
            (Err(e), Err(want)) => assert_eq!(e.to_string(), want, "case {:?}", c.name),
            (got, want) => panic!("case {:?}: got {got:?}, want {want:?}", c.name),
        }
    }
}

#[tokio::test]
async fn assumed_authentication_objects() {
    // A TriggerAuthentication outside the known set: any parameter may come from it.
    let r = resolver(AbsentPolicy {
        trigger_authentication: Absent::Assumed,
        ..Default::default()
    });
    let env = ResolvedEnv::default();
    let auth = r
        .auth_params(
            NS,
            &trigger("{type: x, authenticationRef: {name: elsewhere}}"),
            &env,
            None,
        )
        .await
        .expect("assumed");
    assert!(auth.incomplete && auth.params.is_empty());
    assert!(auth.is_assumed("anything"));
    assert_eq!(
        auth.assumed_objects.into_iter().collect::<Vec<_>>(),
        vec![ObjectRef::new("TriggerAuthentication", NS, "elsewhere")]
    );

    // A known TriggerAuthentication whose Secret is outside the set: its parameters are assumed.
    let r = Resolver::new(
        MemorySource::new(AbsentPolicy::assume_all()).with_trigger_authentication(
            NS,
            "ta",
            ta("secretTargetRef: [{parameter: queryKey, name: nr, key: apiKey}, {parameter: account, name: nr, key: account}]
env: [{parameter: fromEnv, name: SOME_VAR}]"),
        ),
        KEDA_NS,
    );
    let auth = r
        .auth_params(
            NS,
            &trigger("{type: x, authenticationRef: {name: ta}}"),
            &ResolvedEnv::unknown(),
            None,
        )
        .await
        .expect("assumed");
    assert!(!auth.incomplete);
    assert!(auth.params.is_empty(), "{:?}", auth.params);
    assert_eq!(
        auth.assumed.iter().map(String::as_str).collect::<Vec<_>>(),
        ["account", "fromEnv", "queryKey"]
    );
    assert!(!auth.is_assumed("other"));
    assert_eq!(
        auth.assumed_objects.into_iter().collect::<Vec<_>>(),
        vec![ObjectRef::new("Secret", NS, "nr")]
    );
}

/// A scratch directory removed on drop: `root/` (parameter files, a link out) and `outside/`.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "keda-resolver-filepath-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
        ));
        std::fs::create_dir_all(dir.join("root/team")).expect("root");
        std::fs::create_dir_all(dir.join("outside")).expect("outside");
        std::fs::write(
            dir.join("root/team/creds.json"),
            r#"{"apiKey": "from-file", "host": "db.internal"}"#,
        )
        .expect("creds");
        std::fs::write(dir.join("root/list.json"), r#"["not", "an", "object"]"#).expect("list");
        std::fs::write(dir.join("outside/creds.json"), r#"{"apiKey": "stolen"}"#).expect("out");
        std::os::unix::fs::symlink(dir.join("outside/creds.json"), dir.join("root/link.json"))
            .expect("link");
        Scratch(dir)
    }

    fn root(&self) -> keda_scalers::files::FileRoot {
        keda_scalers::files::FileRoot::new(&self.0.join("root").display().to_string())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `filePath` of a ClusterTriggerAuthentication: read under the root (its parameters replace the object's
/// other references, as upstream), refused outside it, through a link out of it, without a root, and on a
/// namespaced TriggerAuthentication. Where the file is not (webhook, lint) only the path is checked, with
/// the same error, and the parameters are unknown.
#[tokio::test]
async fn file_path_is_confined_to_the_root() {
    use keda_resolver::FileAccess;
    use keda_scalers::files::FileRoot;
    let scratch = Scratch::new();
    let root = scratch.root();
    let outside = scratch.0.join("outside/creds.json").display().to_string();
    let cta = |path: &str| {
        ta(&format!(
            "filePath: '{path}'\nsecretTargetRef: [{{parameter: token, name: shared, key: token}}]"
        ))
    };
    let refused =
        |name: &str, why: &str| -> Result<&'static [(&'static str, &'static str)], String> {
            Err(format!(
                "ClusterTriggerAuthentication {name}: filePath: {why}"
            ))
        };
    type Want = Result<&'static [(&'static str, &'static str)], String>;
    let cases: Vec<(&str, String, FileRoot, Want)> = vec![
        (
            "relative",
            "team/creds.json".into(),
            root.clone(),
            Ok(&[("apiKey", "from-file"), ("host", "db.internal")]),
        ),
        (
            "absolute inside",
            scratch.0.join("root/team/creds.json").display().to_string(),
            root.clone(),
            Ok(&[("apiKey", "from-file"), ("host", "db.internal")]),
        ),
        (
            "dots that stay inside",
            "team/../team/./creds.json".into(),
            root.clone(),
            Ok(&[("apiKey", "from-file"), ("host", "db.internal")]),
        ),
        (
            "dots out",
            "../outside/creds.json".into(),
            root.clone(),
            refused(
                "dots out",
                &format!(
                    "\"../outside/creds.json\" is outside --filepath-auth-root-path ({})",
                    scratch.0.join("root").display()
                ),
            ),
        ),
        (
            "absolute outside",
            outside.clone(),
            root.clone(),
            refused(
                "absolute outside",
                &format!(
                    "{outside:?} is outside --filepath-auth-root-path ({})",
                    scratch.0.join("root").display()
                ),
            ),
        ),
        (
            "service account token",
            "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
            root.clone(),
            refused(
                "service account token",
                &format!(
                    "\"/var/run/secrets/kubernetes.io/serviceaccount/token\" is outside --filepath-auth-root-path ({})",
                    scratch.0.join("root").display()
                ),
            ),
        ),
        (
            "link out",
            "link.json".into(),
            root.clone(),
            refused(
                "link out",
                &format!(
                    "\"link.json\" leads outside --filepath-auth-root-path ({}) through a symbolic link",
                    scratch.0.join("root").display()
                ),
            ),
        ),
        (
            "no root",
            "team/creds.json".into(),
            FileRoot::unset(),
            refused(
                "no root",
                "no file may be read: the operator runs without --filepath-auth-root-path",
            ),
        ),
        (
            "not an object",
            "list.json".into(),
            root.clone(),
            refused(
                "not an object",
                "\"list.json\" is not a JSON object of string parameters",
            ),
        ),
    ];
    for (name, path, file_root, want) in cases {
        let objects =
            source(AbsentPolicy::default()).with_cluster_trigger_authentication(name, cta(&path));
        let r = Resolver::new(objects, KEDA_NS).with_file_root(file_root.clone(), FileAccess::Read);
        let t = trigger(&format!(
            "{{type: x, authenticationRef: {{name: '{name}', kind: ClusterTriggerAuthentication}}}}"
        ));
        let got = r
            .auth_params(NS, &t, &ResolvedEnv::default(), None)
            .await
            .map(|a| a.params)
            .map_err(|e| e.to_string());
        assert_eq!(got, want.clone().map(map), "{name}");
        let text = format!("{got:?}");
        assert!(!text.contains("stolen"), "{name}: {text}");

        // The webhook and lint: the same error for what the path says; the parameters unknown.
        let objects =
            source(AbsentPolicy::default()).with_cluster_trigger_authentication(name, cta(&path));
        let checker =
            Resolver::new(objects, KEDA_NS).with_file_root(file_root, FileAccess::CheckOnly);
        match (
            checker
                .auth_params(NS, &t, &ResolvedEnv::default(), None)
                .await,
            &want,
        ) {
            (Ok(auth), Ok(_)) | (Ok(auth), Err(_))
                if name == "link out" || name == "not an object" =>
            {
                // Only the operator sees what the file is.
                assert!(auth.incomplete && auth.is_assumed("apiKey"), "{name}");
            }
            (Ok(auth), Ok(_)) => assert!(auth.incomplete && auth.params.is_empty(), "{name}"),
            (Err(e), Err(want)) => assert_eq!(&e.to_string(), want, "{name} (check only)"),
            (got, want) => panic!("{name} (check only): got {got:?}, want {want:?}"),
        }
    }

    // A namespaced TriggerAuthentication belongs to the tenant: filePath is refused there, as upstream.
    let objects = source(AbsentPolicy::default()).with_trigger_authentication(
        NS,
        "mine",
        ta("filePath: team/creds.json"),
    );
    let r = Resolver::new(objects, KEDA_NS).with_file_root(root, FileAccess::Read);
    let err = r
        .auth_params(
            NS,
            &trigger("{type: x, authenticationRef: {name: mine}}"),
            &ResolvedEnv::default(),
            None,
        )
        .await
        .expect_err("namespaced");
    assert_eq!(
        err.to_string(),
        "TriggerAuthentication apps/mine: filePath: is only supported for ClusterTriggerAuthentication"
    );
}
