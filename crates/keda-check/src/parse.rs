//! A trigger's parse when some of its values cannot be read: parameters and env variables that come from
//! objects assumed to exist (`keda lint` for objects outside its input; the admission webhook, which
//! reads no Secrets, ConfigMaps or ServiceAccounts) are stood in by placeholders, so everything else the
//! trigger says is still judged by the operator's own parse, and `keda lint` and the webhook reach the
//! same verdict on the same input.

use std::collections::BTreeMap;

use keda_api::ScaleTriggers;
use keda_scalers::{ScalerError, TriggerInput};

use keda_resolver::{ResolvedAuth, ResolvedEnv};

/// Values tried for a parameter that comes from an assumed object, until the parse accepts one.
const PLACEHOLDERS: &[&str] = &["1", "https://assumed.invalid/", "true", "assumed"];
/// Bound on the parse attempts for one trigger.
const MAX_PARSE_ATTEMPTS: usize = 64;

/// Parses the trigger with the operator's parse, standing in placeholder values for the parameters that
/// come from assumed objects. An error about such a parameter is retried with other placeholders; it is
/// reported only when the placeholder makes no difference (the value is not read from the assumed
/// object), and dropped when no placeholder is accepted (the real value cannot be known).
pub fn parse_with_assumptions(
    index: usize,
    namespace: &str,
    trigger: &ScaleTriggers,
    env: &ResolvedEnv,
    auth: &ResolvedAuth,
    parse: impl Fn(&TriggerInput) -> Result<(), ScalerError>,
) -> Option<ScalerError> {
    let mut auth_params = auth.params.clone();
    for p in &auth.assumed {
        auth_params.insert(p.clone(), PLACEHOLDERS[0].to_owned());
    }
    let mut vars = env.vars.clone();
    for v in &env.assumed {
        vars.insert(v.clone(), PLACEHOLDERS[0].to_owned());
    }
    // Per field: the reason of its first error, and the placeholders still to try.
    let mut first_reason: BTreeMap<String, (String, ScalerError)> = BTreeMap::new();
    let mut to_try: BTreeMap<String, Vec<String>> = BTreeMap::new();

    for _ in 0..MAX_PARSE_ATTEMPTS {
        let input = TriggerInput {
            index,
            trigger_type: &trigger.r#type,
            namespace,
            name: trigger.name.as_deref(),
            metadata: &trigger.metadata,
            resolved_env: &vars,
            auth_params: &auth_params,
            metric_type: trigger.metric_type.as_deref(),
        };
        let err = match parse(&input) {
            Ok(_) => return None,
            Err(e) => e,
        };
        let ScalerError::Config { field, reason, .. } = &err else {
            return Some(err);
        };
        let field = field.clone();
        let reason = reason.clone();
        let env_var = trigger
            .metadata
            .get(&format!("{field}FromEnv"))
            .map(|v| v.trim().to_owned())
            .filter(|v| env.is_assumed(v));
        let from_auth = auth.is_assumed(&field);
        if env_var.is_none() && !from_auth {
            return Some(err);
        }
        match first_reason.get(&field) {
            None => {
                first_reason.insert(field.clone(), (reason.clone(), err));
                let current = match &env_var {
                    Some(var) => vars.get(var),
                    None => auth_params.get(&field),
                };
                let mut candidates: Vec<String> = first_allowed_value(&reason)
                    .into_iter()
                    .chain(PLACEHOLDERS.iter().map(|s| s.to_string()))
                    .filter(|c| Some(c) != current)
                    .collect();
                candidates.reverse();
                to_try.insert(field.clone(), candidates);
            }
            Some((first, _)) if *first == reason => {
                // A placeholder changed nothing: the value is not read from the assumed object.
                return first_reason.remove(&field).map(|(_, e)| e);
            }
            Some(_) => {
                if let Some(first) = first_allowed_value(&reason)
                    && let Some(list) = to_try.get_mut(&field)
                    && !list.contains(&first)
                {
                    list.push(first);
                }
            }
        }
        let Some(next) = to_try.get_mut(&field).and_then(Vec::pop) else {
            // No placeholder is accepted: the real value is what matters, and it is not known.
            return None;
        };
        if let Some(var) = &env_var {
            vars.insert(var.clone(), next.clone());
        }
        if from_auth {
            auth_params.insert(field.clone(), next);
        }
    }
    None
}

/// The first allowed value from a reason like `"x" must be one of a, b, c`.
fn first_allowed_value(reason: &str) -> Option<String> {
    let (_, list) = reason.split_once("must be one of ")?;
    let first = list.split([',', ' ', ';', ')']).next()?.trim();
    (!first.is_empty()).then(|| first.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use keda_scalers::files::FileRoot;

    /// The operator's parse, as `keda lint` and the webhook call it.
    fn operator_parse(input: &TriggerInput) -> Result<(), ScalerError> {
        keda_scalers::parse_trigger_confined(input, &FileRoot::unset()).map(drop)
    }

    fn trigger(yaml: &str) -> ScaleTriggers {
        serde_yaml_ng::from_str(yaml).expect("trigger")
    }

    fn field_of(e: Option<ScalerError>) -> Option<String> {
        e.map(|e| e.field().unwrap_or("<none>").to_owned())
    }

    #[test]
    fn parameters_of_assumed_objects_count_as_present() {
        let nr = "{type: new-relic, metadata: {nrql: 'SELECT 1', threshold: '5'}}";
        let unknown_auth = ResolvedAuth {
            incomplete: true,
            ..Default::default()
        };
        let known_env = ResolvedEnv::default();
        // account, region and queryKey may all come from the unknown TriggerAuthentication.
        assert_eq!(
            field_of(parse_with_assumptions(
                0,
                "default",
                &trigger(nr),
                &known_env,
                &unknown_auth,
                operator_parse
            )),
            None
        );
        // nrql is read from metadata only: its absence is an error whatever the TriggerAuthentication holds.
        let no_nrql = "{type: new-relic, metadata: {threshold: '5'}}";
        assert_eq!(
            field_of(parse_with_assumptions(
                0,
                "default",
                &trigger(no_nrql),
                &known_env,
                &unknown_auth,
                operator_parse
            )),
            Some("nrql".to_owned())
        );
        // Without any authentication the first missing parameter is reported.
        assert_eq!(
            field_of(parse_with_assumptions(
                0,
                "default",
                &trigger(nr),
                &known_env,
                &ResolvedAuth::default(),
                operator_parse
            )),
            Some("account".to_owned())
        );
        // Assumed parameters: present, placeholder values that parse.
        let assumed = ResolvedAuth {
            assumed: ["account", "queryKey"].map(str::to_owned).into(),
            ..Default::default()
        };
        assert_eq!(
            field_of(parse_with_assumptions(
                0,
                "default",
                &trigger(nr),
                &known_env,
                &assumed,
                operator_parse
            )),
            None
        );
        // `<key>FromEnv` naming a variable of an unknown workload.
        let redis = "{type: redis, metadata: {addressFromEnv: ADDR, listName: q}}";
        assert_eq!(
            field_of(parse_with_assumptions(
                0,
                "default",
                &trigger(redis),
                &ResolvedEnv::unknown(),
                &ResolvedAuth::default(),
                operator_parse
            )),
            None
        );
        assert_eq!(
            field_of(parse_with_assumptions(
                0,
                "default",
                &trigger(redis),
                &known_env,
                &ResolvedAuth::default(),
                operator_parse
            )),
            Some("address".to_owned())
        );
    }

    #[test]
    fn allowed_values_are_read_from_enum_errors() {
        assert_eq!(
            first_allowed_value(r#""x" must be one of json, xml"#).as_deref(),
            Some("json")
        );
        assert_eq!(first_allowed_value("is required"), None);
    }
}
