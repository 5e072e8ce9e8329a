//! The environment of the scale target's container, as the kubelet would give it to the process.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, PodSpec};

use crate::{Lookup, ObjectRef, ObjectSource, ResolveError, Resolver};

/// The resolved environment of one container.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResolvedEnv {
    /// The container whose environment this is; None when the workload is not known.
    pub container: Option<String>,
    /// Variables and their values.
    pub vars: BTreeMap<String, String>,
    /// Variables that are present but whose values come from assumed objects (not in `vars`).
    pub assumed: BTreeSet<String>,
    /// Some source whose contents are not known (an assumed `envFrom` object, or an unknown workload) may
    /// define variables listed nowhere here.
    pub incomplete: bool,
    /// Objects assumed to exist while resolving.
    pub assumed_objects: BTreeSet<ObjectRef>,
    /// Things worth telling the user that are not errors (skipped variables, restricted secrets).
    pub notes: Vec<String>,
}

impl ResolvedEnv {
    /// The environment of a workload that is not known at all: any variable may exist.
    pub fn unknown() -> Self {
        ResolvedEnv {
            incomplete: true,
            ..Default::default()
        }
    }

    /// The value of a variable whose value is known.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// True when the variable exists but its value is not known (assumed, or possibly defined by an
    /// assumed source).
    pub fn is_assumed(&self, name: &str) -> bool {
        self.assumed.contains(name) || (self.incomplete && !self.vars.contains_key(name))
    }

    fn set(&mut self, name: &str, value: String) {
        self.assumed.remove(name);
        self.vars.insert(name.to_owned(), value);
    }

    fn set_assumed(&mut self, name: &str) {
        self.vars.remove(name);
        self.assumed.insert(name.to_owned());
    }
}

/// Kubernetes' `$(VAR)` expansion: `$(NAME)` is replaced by the value of NAME when `lookup` knows it and
/// kept literally otherwise, `$$` is an escaped `$`, any other `$` stays as written.
///
/// `lookup` returns `Some(Some(value))` for a known variable, `Some(None)` for a variable that exists with
/// an unknown value, `None` for an undefined one. The boolean result is true when the expansion used a
/// variable whose value is unknown.
pub fn expand<'a>(value: &str, lookup: impl Fn(&str) -> Option<Option<&'a str>>) -> (String, bool) {
    let mut out = String::with_capacity(value.len());
    let mut uses_unknown = false;
    let mut rest = value;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let mut chars = after.chars();
        match chars.next() {
            None => {
                out.push('$');
                rest = after;
            }
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match lookup(name) {
                        Some(Some(v)) => out.push_str(v),
                        found => {
                            // Undefined variables stay as written; so do unknown ones, flagged.
                            uses_unknown |= found.is_some();
                            out.push('$');
                            out.push_str(&after[..=close]);
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(c) => {
                out.push('$');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    (out, uses_unknown)
}

fn container_names(pod_spec: &PodSpec) -> String {
    let names: Vec<String> = pod_spec
        .containers
        .iter()
        .map(|c| format!("{:?}", c.name))
        .collect();
    if names.is_empty() {
        "no containers".to_owned()
    } else {
        format!("containers {}", names.join(", "))
    }
}

/// The container `name` (or the first one) of a pod spec.
pub(crate) fn pick_container<'p>(
    pod_spec: &'p PodSpec,
    name: Option<&str>,
) -> Result<&'p Container, ResolveError> {
    match name.filter(|n| !n.is_empty()) {
        Some(name) => pod_spec
            .containers
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ResolveError::ContainerNotFound {
                name: name.to_owned(),
                available: container_names(pod_spec),
            }),
        None => pod_spec
            .containers
            .first()
            .ok_or(ResolveError::NoContainers),
    }
}

impl<S: ObjectSource> Resolver<S> {
    /// The environment of `container` (default: the first container) of a pod spec in `namespace`:
    /// `envFrom` sources in order, then `env` entries in order, later ones overriding earlier ones.
    pub async fn container_env(
        &self,
        namespace: &str,
        pod_spec: &PodSpec,
        container: Option<&str>,
    ) -> Result<ResolvedEnv, ResolveError> {
        let c = pick_container(pod_spec, container)?;
        let mut env = ResolvedEnv {
            container: Some(c.name.clone()),
            ..Default::default()
        };
        let read_secrets = self.may_read_secrets_of(namespace);

        for (i, source) in c.env_from.iter().flatten().enumerate() {
            let prefix = source.prefix.as_deref().unwrap_or("");
            let used_by = || format!("envFrom[{i}] of container {:?}", c.name);
            let (object, lookup, optional) = if let Some(cm) = &source.config_map_ref {
                (
                    ObjectRef::new("ConfigMap", namespace, &cm.name),
                    self.source.config_map(namespace, &cm.name).await?,
                    cm.optional.unwrap_or(false),
                )
            } else if let Some(sec) = &source.secret_ref {
                if !read_secrets {
                    env.notes.push(format!(
                        "{}: Secret {namespace}/{} skipped: secret access is restricted to namespace {}",
                        used_by(),
                        sec.name,
                        self.cluster_object_namespace
                    ));
                    continue;
                }
                (
                    ObjectRef::new("Secret", namespace, &sec.name),
                    self.source.secret(namespace, &sec.name).await?,
                    sec.optional.unwrap_or(false),
                )
            } else {
                continue;
            };
            match lookup {
                Lookup::Found(data) => {
                    for (k, v) in data {
                        env.set(&format!("{prefix}{k}"), v);
                    }
                }
                Lookup::Missing if optional => {}
                Lookup::Missing => {
                    return Err(ResolveError::ObjectNotFound {
                        object,
                        used_by: used_by(),
                    });
                }
                Lookup::Assumed => {
                    env.incomplete = true;
                    env.assumed_objects.insert(object);
                }
            }
        }

        for var in c.env.iter().flatten() {
            let used_by = || format!("env {} of container {:?}", var.name, c.name);
            let Some(from) = &var.value_from else {
                let raw = var.value.as_deref().unwrap_or("");
                let (value, uses_unknown) = expand(raw, |name| {
                    if let Some(v) = env.vars.get(name) {
                        Some(Some(v.as_str()))
                    } else if env.is_assumed(name) {
                        Some(None)
                    } else {
                        None
                    }
                });
                if uses_unknown {
                    env.set_assumed(&var.name);
                } else {
                    env.set(&var.name, value);
                }
                continue;
            };
            if let Some(sel) = &from.secret_key_ref {
                if !read_secrets {
                    env.notes.push(format!(
                        "{}: Secret {namespace}/{} skipped: secret access is restricted to namespace {}",
                        used_by(),
                        sel.name,
                        self.cluster_object_namespace
                    ));
                    continue;
                }
                let object = ObjectRef::new("Secret", namespace, &sel.name);
                let lookup = self.source.secret(namespace, &sel.name).await?;
                let optional = sel.optional.unwrap_or(false);
                match key_value(lookup, object, &sel.key, optional, used_by, &mut env)? {
                    KeyValue::Value(v) => env.set(&var.name, v),
                    KeyValue::Assumed => env.set_assumed(&var.name),
                    KeyValue::LeftOut => {}
                }
            } else if let Some(sel) = &from.config_map_key_ref {
                let object = ObjectRef::new("ConfigMap", namespace, &sel.name);
                let lookup = self.source.config_map(namespace, &sel.name).await?;
                let optional = sel.optional.unwrap_or(false);
                match key_value(lookup, object, &sel.key, optional, used_by, &mut env)? {
                    KeyValue::Value(v) => env.set(&var.name, v),
                    KeyValue::Assumed => env.set_assumed(&var.name),
                    KeyValue::LeftOut => {}
                }
            } else {
                // fieldRef / resourceFieldRef / fileKeyRef: upstream leaves these out as well.
                env.notes.push(format!(
                    "{}: only value, secretKeyRef and configMapKeyRef are resolved; the variable is left out",
                    used_by()
                ));
            }
        }
        Ok(env)
    }
}

/// What a `secretKeyRef` / `configMapKeyRef` gives the variable being resolved.
enum KeyValue {
    Value(String),
    /// Optional and absent: the variable is left out.
    LeftOut,
    /// From an assumed object: present, value unknown.
    Assumed,
}

fn key_value(
    lookup: Lookup<BTreeMap<String, String>>,
    object: ObjectRef,
    key: &str,
    optional: bool,
    used_by: impl Fn() -> String,
    env: &mut ResolvedEnv,
) -> Result<KeyValue, ResolveError> {
    match lookup {
        Lookup::Found(mut data) => match data.remove(key) {
            Some(v) => Ok(KeyValue::Value(v)),
            None if optional => Ok(KeyValue::LeftOut),
            None => Err(ResolveError::KeyNotFound {
                object,
                key: key.to_owned(),
                used_by: used_by(),
            }),
        },
        Lookup::Missing if optional => Ok(KeyValue::LeftOut),
        Lookup::Missing => Err(ResolveError::ObjectNotFound {
            object,
            used_by: used_by(),
        }),
        Lookup::Assumed => {
            env.assumed_objects.insert(object);
            Ok(KeyValue::Assumed)
        }
    }
}
