//! TriggerAuthentication / ClusterTriggerAuthentication → `authParams`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::PodSpec;
use keda_api::ScaleTriggers;
use keda_api::common::AuthenticationRefKind;
use keda_api::trigger_auth::{
    AuthPodIdentity, IdentityOwner, OAuth2, PodIdentityProvider, TriggerAuthenticationSpec,
};

use crate::env::pick_container;
use crate::{
    AWS_ROLE_ARN_PARAM, EKS_ROLE_ARN_ANNOTATION, FileAccess, Lookup, ObjectRef, ObjectSource,
    ResolveError, ResolvedEnv, Resolver,
};

/// The authentication parameters of one trigger.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResolvedAuth {
    /// Parameter → value, what scalers read as `authParams`.
    pub params: BTreeMap<String, String>,
    /// Parameters that are present but whose values come from assumed objects (not in `params`).
    pub assumed: BTreeSet<String>,
    /// The authentication object itself is assumed, so any parameter may be supplied by it.
    pub incomplete: bool,
    /// Objects assumed to exist while resolving.
    pub assumed_objects: BTreeSet<ObjectRef>,
    /// The pod identity of the authentication object, if any.
    pub pod_identity: Option<AuthPodIdentity>,
    /// Things worth telling the user that are not errors.
    pub notes: Vec<String>,
}

impl ResolvedAuth {
    /// True when the parameter exists but its value is not known.
    pub fn is_assumed(&self, param: &str) -> bool {
        self.assumed.contains(param) || (self.incomplete && !self.params.contains_key(param))
    }

    fn set(&mut self, param: &str, value: String) {
        self.assumed.remove(param);
        self.params.insert(param.to_owned(), value);
    }

    fn set_assumed(&mut self, param: &str, object: Option<ObjectRef>) {
        self.params.remove(param);
        self.assumed.insert(param.to_owned());
        self.assumed_objects.extend(object);
    }
}

impl<S: ObjectSource> Resolver<S> {
    /// The authentication parameters of `trigger` (an object in `namespace`).
    ///
    /// `env` is the resolved environment of the scale target's env-source container and `pod_spec` the
    /// target's pod spec, used by the authentication object's `env` entries and by AWS workload identity.
    pub async fn auth_params(
        &self,
        namespace: &str,
        trigger: &ScaleTriggers,
        env: &ResolvedEnv,
        pod_spec: Option<&PodSpec>,
    ) -> Result<ResolvedAuth, ResolveError> {
        let mut out = ResolvedAuth::default();
        let Some(auth_ref) = trigger
            .authentication_ref
            .as_ref()
            .filter(|r| !r.name.is_empty())
        else {
            return Ok(out);
        };
        let (object, lookup, objects_namespace) = match auth_ref.kind() {
            AuthenticationRefKind::TriggerAuthentication => (
                ObjectRef::new("TriggerAuthentication", namespace, &auth_ref.name),
                self.source
                    .trigger_authentication(namespace, &auth_ref.name)
                    .await?,
                namespace,
            ),
            AuthenticationRefKind::ClusterTriggerAuthentication => (
                ObjectRef::cluster("ClusterTriggerAuthentication", &auth_ref.name),
                self.source
                    .cluster_trigger_authentication(&auth_ref.name)
                    .await?,
                self.cluster_object_namespace.as_str(),
            ),
        };
        let spec = match lookup {
            Lookup::Found(spec) => spec,
            Lookup::Missing => return Err(ResolveError::AuthenticationNotFound { object }),
            Lookup::Assumed => {
                out.incomplete = true;
                out.assumed_objects.insert(object);
                return Ok(out);
            }
        };
        self.resolve_spec(
            &spec,
            &object,
            objects_namespace,
            namespace,
            env,
            pod_spec,
            &mut out,
        )
        .await?;
        Ok(out)
    }

    #[allow(clippy::too_many_arguments)]
    async fn resolve_spec(
        &self,
        spec: &TriggerAuthenticationSpec,
        object: &ObjectRef,
        objects_namespace: &str,
        namespace: &str,
        env: &ResolvedEnv,
        pod_spec: Option<&PodSpec>,
        out: &mut ResolvedAuth,
    ) -> Result<(), ResolveError> {
        out.pod_identity = spec.pod_identity.clone();

        // Parameters from the scale target's container env.
        for (i, e) in spec.env.iter().flatten().enumerate() {
            let used_by = format!("env[{i}] (parameter {}) of {object}", e.parameter);
            let container_env = match pod_spec {
                None if env.incomplete => None,
                None => {
                    out.notes.push(format!(
                        "{used_by}: the scale target has no pod spec; the parameter is empty"
                    ));
                    out.set(&e.parameter, String::new());
                    continue;
                }
                Some(pod_spec) => {
                    // Upstream reads the first container when `containerName` is not given.
                    let wanted = match e.container_name.as_deref().filter(|n| !n.is_empty()) {
                        Some(n) => n.to_owned(),
                        None => pick_container(pod_spec, None)?.name.clone(),
                    };
                    if env.container.as_deref() == Some(wanted.as_str()) {
                        None
                    } else {
                        Some(
                            self.container_env(namespace, pod_spec, Some(&wanted))
                                .await?,
                        )
                    }
                }
            };
            let source_env = container_env.as_ref().unwrap_or(env);
            if let Some(v) = source_env.get(&e.name) {
                out.set(&e.parameter, v.to_owned());
            } else if source_env.is_assumed(&e.name) {
                out.assumed_objects
                    .extend(source_env.assumed_objects.iter().cloned());
                out.set_assumed(&e.parameter, None);
            } else {
                out.notes.push(format!(
                    "{used_by}: variable {} is not set in container {:?}; the parameter is empty",
                    e.name,
                    source_env.container.as_deref().unwrap_or("")
                ));
                out.set(&e.parameter, String::new());
            }
        }

        if let Some(path) = spec.file_path.as_deref().filter(|p| !p.is_empty()) {
            // As upstream: the file's parameters are the object's only ones (its env, Secret and
            // ConfigMap references are not read), its pod identity still applies.
            out.params.clear();
            out.assumed.clear();
            self.file_params(path, object, out)?;
            if let Some(identity) = &spec.pod_identity {
                self.pod_identity(identity, object, namespace, env, pod_spec, out)
                    .await?;
            }
            return Ok(());
        }

        for (i, r) in spec.config_map_target_ref.iter().flatten().enumerate() {
            let used_by = format!(
                "configMapTargetRef[{i}] (parameter {}) of {object}",
                r.parameter
            );
            let cm = ObjectRef::new("ConfigMap", objects_namespace, &r.name);
            let lookup = self.source.config_map(objects_namespace, &r.name).await?;
            self.take_key(lookup, cm, &r.key, &r.parameter, used_by, out)?;
        }

        let secret_namespace = self.auth_secret_namespace(objects_namespace);
        for (i, r) in spec.secret_target_ref.iter().flatten().enumerate() {
            let used_by = format!(
                "secretTargetRef[{i}] (parameter {}) of {object}",
                r.parameter
            );
            let secret = ObjectRef::new("Secret", secret_namespace, &r.name);
            let lookup = self.source.secret(secret_namespace, &r.name).await?;
            self.take_key(lookup, secret, &r.key, &r.parameter, used_by, out)?;
        }

        let unsupported = |feature| ResolveError::Unsupported {
            object: object.clone(),
            feature,
        };
        if spec
            .hashi_corp_vault
            .as_ref()
            .is_some_and(|v| !v.secrets.is_empty())
        {
            return Err(unsupported("hashiCorpVault"));
        }
        if spec
            .azure_key_vault
            .as_ref()
            .is_some_and(|v| !v.secrets.is_empty())
        {
            return Err(unsupported("azureKeyVault"));
        }
        if spec
            .gcp_secret_manager
            .as_ref()
            .is_some_and(|v| !v.secrets.is_empty())
        {
            return Err(unsupported("gcpSecretManager"));
        }
        if spec
            .aws_secret_manager
            .as_ref()
            .is_some_and(|v| !v.secrets.is_empty())
        {
            return Err(unsupported("awsSecretManager"));
        }
        if spec
            .bound_service_account_token
            .as_ref()
            .is_some_and(|v| !v.is_empty())
        {
            return Err(unsupported("boundServiceAccountToken"));
        }
        if let Some(oauth2) = &spec.oauth2 {
            self.oauth2(oauth2, object, secret_namespace, out).await?;
        }

        if let Some(identity) = &spec.pod_identity {
            self.pod_identity(identity, object, namespace, env, pod_spec, out)
                .await?;
        }
        Ok(())
    }

    /// The parameters of `filePath`: only for a ClusterTriggerAuthentication (a namespaced object is the
    /// tenant's), only under the root; a JSON object of strings, at most [`MAX_FILE_BYTES`] long.
    ///
    /// [`MAX_FILE_BYTES`]: keda_scalers::files::MAX_FILE_BYTES
    fn file_params(
        &self,
        path: &str,
        object: &ObjectRef,
        out: &mut ResolvedAuth,
    ) -> Result<(), ResolveError> {
        let refused = |message: String| ResolveError::FilePath {
            object: object.clone(),
            message,
        };
        if object.kind != "ClusterTriggerAuthentication" {
            return Err(refused(
                "is only supported for ClusterTriggerAuthentication".to_owned(),
            ));
        }
        match self.file_access {
            FileAccess::CheckOnly => {
                self.file_root
                    .check(path)
                    .map_err(|e| refused(e.to_string()))?;
                out.incomplete = true;
                out.assumed_objects.insert(object.clone());
                out.notes.push(format!(
                    "{object}: filePath {path:?} is read by the operator; its parameters are not checked here"
                ));
            }
            FileAccess::Read => {
                let data = self
                    .file_root
                    .read(path)
                    .map_err(|e| refused(e.to_string()))?;
                let params: BTreeMap<String, String> =
                    serde_json::from_slice(&data).map_err(|_| {
                        refused(format!(
                            "{path:?} is not a JSON object of string parameters"
                        ))
                    })?;
                for (k, v) in params {
                    out.set(&k, v);
                }
            }
        }
        Ok(())
    }

    /// Fills `param` from `key` of a looked-up Secret or ConfigMap.
    fn take_key(
        &self,
        lookup: Lookup<BTreeMap<String, String>>,
        object: ObjectRef,
        key: &str,
        param: &str,
        used_by: String,
        out: &mut ResolvedAuth,
    ) -> Result<(), ResolveError> {
        match lookup {
            Lookup::Found(mut data) => match data.remove(key) {
                Some(v) => {
                    out.set(param, v);
                    Ok(())
                }
                None => Err(ResolveError::KeyNotFound {
                    object,
                    key: key.to_owned(),
                    used_by,
                }),
            },
            Lookup::Missing => Err(ResolveError::ObjectNotFound { object, used_by }),
            Lookup::Assumed => {
                out.set_assumed(param, Some(object));
                Ok(())
            }
        }
    }

    /// The client-credentials parameters upstream hands to scalers: `oauthTokenURI`, `clientID`,
    /// `clientSecret`, `scopes` (comma-joined) and `endpointParams` (URL-encoded).
    async fn oauth2(
        &self,
        oauth2: &OAuth2,
        object: &ObjectRef,
        secret_namespace: &str,
        out: &mut ResolvedAuth,
    ) -> Result<(), ResolveError> {
        out.set("oauthTokenURI", oauth2.token_url.clone());
        out.set("clientID", oauth2.client_id.clone());
        match &oauth2.client_secret {
            Some(s) => {
                let sel = &s.value_from.secret_key_ref;
                let secret = ObjectRef::new("Secret", secret_namespace, &sel.name);
                let lookup = self.source.secret(secret_namespace, &sel.name).await?;
                let used_by = format!("oauth2.clientSecret of {object}");
                self.take_key(lookup, secret, &sel.key, "clientSecret", used_by, out)?;
            }
            None => out.set("clientSecret", String::new()),
        }
        if let Some(scopes) = oauth2.scopes.as_ref().filter(|s| !s.is_empty()) {
            out.set("scopes", scopes.join(","));
        }
        if let Some(params) = oauth2.token_url_params.as_ref().filter(|p| !p.is_empty()) {
            let encoded: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
                .collect();
            out.set("endpointParams", encoded.join("&"));
        }
        Ok(())
    }

    async fn pod_identity(
        &self,
        identity: &AuthPodIdentity,
        object: &ObjectRef,
        namespace: &str,
        env: &ResolvedEnv,
        pod_spec: Option<&PodSpec>,
        out: &mut ResolvedAuth,
    ) -> Result<(), ResolveError> {
        let workload_owner = identity.identity_owner == Some(IdentityOwner::Workload);
        match identity.provider {
            PodIdentityProvider::Aws => {
                if let Some(role) = &identity.role_arn {
                    if workload_owner {
                        return Err(ResolveError::PodIdentity {
                            object: object.clone(),
                            message: format!(
                                "roleArn ({role}) can't be set when identityOwner is workload"
                            ),
                        });
                    }
                    out.set(AWS_ROLE_ARN_PARAM, role.clone());
                }
                if workload_owner {
                    self.role_from_service_account(object, namespace, env, pod_spec, true, out)
                        .await?;
                }
            }
            PodIdentityProvider::AwsEks => {
                out.notes.push(format!(
                    "{object}: podIdentity provider aws-eks is deprecated; use aws"
                ));
                self.role_from_service_account(object, namespace, env, pod_spec, false, out)
                    .await?;
            }
            PodIdentityProvider::AzureWorkload => {
                if identity.identity_id.as_deref() == Some("") {
                    return Err(ResolveError::PodIdentity {
                        object: object.clone(),
                        message: "identityId must not be empty when it is set".to_owned(),
                    });
                }
                // No scaler of keda-rs can use an Azure token yet: refusing is louder than sending
                // unauthenticated requests.
                return Err(ResolveError::Unsupported {
                    object: object.clone(),
                    feature: "podIdentity provider azure-workload",
                });
            }
            PodIdentityProvider::Gcp => {
                return Err(ResolveError::Unsupported {
                    object: object.clone(),
                    feature: "podIdentity provider gcp",
                });
            }
            PodIdentityProvider::None => {}
        }
        Ok(())
    }

    /// `awsRoleArn` from the scale target's ServiceAccount annotation.
    async fn role_from_service_account(
        &self,
        object: &ObjectRef,
        namespace: &str,
        env: &ResolvedEnv,
        pod_spec: Option<&PodSpec>,
        required: bool,
        out: &mut ResolvedAuth,
    ) -> Result<(), ResolveError> {
        let Some(pod_spec) = pod_spec else {
            if env.incomplete {
                out.set_assumed(AWS_ROLE_ARN_PARAM, None);
            }
            return Ok(());
        };
        let sa_name = pod_spec
            .service_account_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or("default");
        let sa = ObjectRef::new("ServiceAccount", namespace, sa_name);
        let used_by = format!("the AWS pod identity of {object}");
        match self
            .source
            .service_account_annotations(namespace, sa_name)
            .await?
        {
            Lookup::Found(annotations) => match annotations.get(EKS_ROLE_ARN_ANNOTATION) {
                Some(role) => out.set(AWS_ROLE_ARN_PARAM, role.clone()),
                None if required => {
                    return Err(ResolveError::KeyNotFound {
                        object: sa,
                        key: format!("metadata.annotations[{EKS_ROLE_ARN_ANNOTATION}]"),
                        used_by,
                    });
                }
                None => out.set(AWS_ROLE_ARN_PARAM, String::new()),
            },
            Lookup::Missing => {
                return Err(ResolveError::ObjectNotFound {
                    object: sa,
                    used_by,
                });
            }
            Lookup::Assumed => out.set_assumed(AWS_ROLE_ARN_PARAM, Some(sa)),
        }
        Ok(())
    }
}

/// Go's `url.QueryEscape`: unreserved characters stay, space becomes `+`, the rest `%XX`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::query_escape;

    #[test]
    fn query_escape_matches_go() {
        assert_eq!(query_escape("a b&c=d/é~"), "a+b%26c%3Dd%2F%C3%A9~");
    }
}
