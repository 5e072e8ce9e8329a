//! The ScaledObject fields around the formula: `advanced.scalingModifiers.{formula,target,activationTarget}`
//! and the trigger names a formula may use.

use keda_api::ScaledObject;

use super::{Formula, validate};
use crate::Error;
use crate::hpa::parse_go_float;

/// Names usable in a ScaledObject's formula: named triggers other than cpu and memory.
pub fn trigger_names(so: &ScaledObject) -> Vec<String> {
    so.spec
        .triggers
        .iter()
        .filter(|t| t.r#type != "cpu" && t.r#type != "memory")
        .filter_map(|t| t.name.clone().filter(|n| !n.is_empty()))
        .collect()
}

/// upstream's `ValidateAndCompileScalingModifiers`: formula and target are required, the target is a
/// float > 0, and the formula validates against the ScaledObject's trigger names. `Ok(None)` when the
/// ScaledObject has no scalingModifiers.
pub fn compile_scaling_modifiers(so: &ScaledObject) -> Result<Option<Formula>, Error> {
    let Some(modifiers) = so.spec.scaling_modifiers() else {
        return Ok(None);
    };
    let invalid = |reason: String| Error::InvalidScalingModifiers { reason };
    let formula = modifiers
        .formula
        .as_deref()
        .filter(|f| !f.is_empty())
        .ok_or_else(|| invalid("formula is mandatory".to_owned()))?;
    let target = modifiers
        .target
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("formula is given but target is empty".to_owned()))?;
    match parse_go_float(target) {
        Some(t) if t > 0.0 => {}
        _ => return Err(invalid(format!("target {target:?} is not a number > 0"))),
    }
    if let Some(activation) = modifiers
        .activation_target
        .as_deref()
        .filter(|a| !a.is_empty())
        && parse_go_float(activation).is_none()
    {
        return Err(invalid(format!(
            "activationTarget {activation:?} is not a number"
        )));
    }
    validate(formula, trigger_names(so)).map(Some)
}

/// `scalingModifiers.activationTarget` as a number (default 0).
pub fn activation_target(so: &ScaledObject) -> Result<f64, Error> {
    let raw = so
        .spec
        .scaling_modifiers()
        .and_then(|m| m.activation_target.as_deref())
        .unwrap_or_default();
    if raw.is_empty() {
        return Ok(0.0);
    }
    parse_go_float(raw).ok_or_else(|| Error::InvalidScalingModifiers {
        reason: format!("activationTarget {raw:?} is not a number"),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use pretty_assertions::assert_eq;

    use super::*;

    fn so(modifiers: &str, triggers: &str) -> ScaledObject {
        serde_yaml_ng::from_str(&format!(
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: w}}
spec:
  scaleTargetRef: {{name: web}}
  advanced: {{scalingModifiers: {modifiers}}}
  triggers: {triggers}
"#
        ))
        .expect("parses")
    }

    #[test]
    fn scaling_modifiers_validation() {
        let triggers = r#"[{type: prometheus, name: a, metadata: {}}, {type: kafka, name: b, metadata: {}}, {type: cpu, name: c, metadata: {}}, {type: cron, metadata: {}}]"#;
        let s = so(
            r#"{formula: "(a + b) / 2", target: "5", activationTarget: "1.5"}"#,
            triggers,
        );
        assert_eq!(trigger_names(&s), vec!["a".to_owned(), "b".to_owned()]);
        let f = compile_scaling_modifiers(&s)
            .expect("valid")
            .expect("has modifiers");
        assert_eq!(f.source(), "(a + b) / 2");
        assert_eq!(
            f.eval(&HashMap::from([
                ("a".into(), Some(4.0)),
                ("b".into(), Some(8.0))
            ])),
            Ok(Some(6.0))
        );
        assert_eq!(activation_target(&s), Ok(1.5));

        let bad = [
            r#"{target: "5"}"#,
            r#"{formula: "a"}"#,
            r#"{formula: "a", target: "0"}"#,
            r#"{formula: "a", target: "x"}"#,
            r#"{formula: "a", target: "5", activationTarget: "x"}"#,
        ];
        for m in bad {
            assert!(
                matches!(
                    compile_scaling_modifiers(&so(m, triggers)),
                    Err(Error::InvalidScalingModifiers { .. })
                ),
                "{m}"
            );
        }
        // cpu triggers are not formula variables.
        assert!(matches!(
            compile_scaling_modifiers(&so(r#"{formula: "a + c", target: "5"}"#, triggers)),
            Err(Error::FormulaUnknownName { .. })
        ));
        let without: ScaledObject = so("{}", triggers);
        assert_eq!(compile_scaling_modifiers(&without), Ok(None));
        assert_eq!(activation_target(&without), Ok(0.0));
    }
}
