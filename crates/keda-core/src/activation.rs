//! The scale loop's own decision for a ScaledObject, made once per `pollingInterval`.
//!
//! KEDA itself only moves the target between 0 (or `idleReplicaCount`) and `minReplicaCount`/1; the HPA
//! does 1↔N. [`decide`] is upstream's `RequestScale` without the IO: given what the loop observed it says
//! what to write to `/scale` and which conditions to set.

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use keda_api::ScaledObject;
use keda_api::consts::condition_reasons;

/// Condition messages upstream pairs with the reasons below.
pub mod messages {
    pub const ACTIVE: &str = "Scaling is performed because triggers are active";
    pub const ACTIVE_FORCED: &str =
        "Scaling is performed because activation is being forced by annotation";
    pub const NOT_ACTIVE: &str = "Scaling is not performed because triggers are not active";
    pub const COOLDOWN: &str = "Scaler cooling down because triggers are not active";
    pub const PARTIAL_TRIGGER_ERROR: &str =
        "Some triggers defined in ScaledObject are not working correctly";
    pub const TRIGGER_ERROR: &str = "Triggers defined in ScaledObject are not working correctly";
}

/// A trigger (or the composite metric) is active when its value is strictly above its activation
/// threshold.
pub fn is_active(value: f64, activation_threshold: f64) -> bool {
    value > activation_threshold
}

/// Everything [`decide`] looks at. Build it with [`ScaleLoopInput::from_scaled_object`].
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleLoopInput {
    /// Replicas of the target right now (`spec.replicas`, nil counted as 1, or `/scale`).
    pub current_replicas: i32,
    /// `spec.minReplicaCount` (default 0).
    pub min_replica_count: i32,
    pub idle_replica_count: Option<i32>,
    /// At least one trigger (or the composite metric) is active.
    pub is_active: bool,
    /// At least one trigger failed this poll.
    pub is_error: bool,
    /// `spec.fallback.replicas` when a fallback is configured.
    pub fallback_replicas: Option<i32>,
    /// `paused-replicas` or a true `paused` annotation.
    pub paused: bool,
    pub paused_scale_in: bool,
    pub paused_scale_out: bool,
    pub force_activation: bool,
    pub last_active_time: Option<Timestamp>,
    pub creation_time: Option<Timestamp>,
    pub now: Timestamp,
    /// Seconds.
    pub cooldown_period: i32,
    /// Seconds.
    pub initial_cooldown_period: i32,
}

impl ScaleLoopInput {
    /// Reads the spec, annotations, status and creation time of `so`; the poll results come from the caller.
    pub fn from_scaled_object(
        so: &ScaledObject,
        current_replicas: i32,
        is_active: bool,
        is_error: bool,
        now: Timestamp,
    ) -> Self {
        ScaleLoopInput {
            current_replicas,
            min_replica_count: so.spec.min_replica_count(),
            idle_replica_count: so.spec.idle_replica_count,
            is_active,
            is_error,
            fallback_replicas: so.spec.fallback.as_ref().map(|f| f.replicas),
            paused: so.is_paused(),
            paused_scale_in: so.is_paused_scale_in(),
            paused_scale_out: so.is_paused_scale_out(),
            force_activation: so.is_force_activation(),
            last_active_time: so
                .status
                .as_ref()
                .and_then(|s| s.last_active_time.as_ref())
                .map(|t| t.0),
            creation_time: so.metadata.creation_timestamp.as_ref().map(|t| t.0),
            now,
            cooldown_period: so.spec.cooldown_period(),
            initial_cooldown_period: so.spec.initial_cooldown_period(),
        }
    }
}

/// Why the loop writes a replica count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleReason {
    /// From 0 (or idle) up to `max(minReplicaCount, 1)`: Event `KEDAScaleTargetActivated`.
    Activate,
    /// Down to 0 or `idleReplicaCount` after the cooldown: Event `KEDAScaleTargetDeactivated`.
    Deactivate(DeactivateTo),
    /// Inactive and below `minReplicaCount` without idle mode: corrected silently.
    EnforceMin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeactivateTo {
    Zero,
    Idle,
}

/// What the scale loop does after one poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Paused by annotation: set only the Paused condition.
    Paused,
    /// Write `replicas` to the target's `/scale`.
    ScaleTo { replicas: i32, reason: ScaleReason },
    /// Active and already running: refresh `lastActiveTime`.
    KeepActive,
    /// Active but scaling out of zero/idle is paused by `paused-scale-out`.
    ScaleOutPaused,
    /// Active although some triggers failed: Ready=Unknown `PartialTriggerError`.
    PartialTriggerError,
    /// Inactive with failing triggers and `fallback.replicas` set: the HPA applies the fallback, so the
    /// target must not be scaled to zero.
    KeepFallbackToHpa,
    /// Inactive with failing triggers and no fallback: Ready=False `TriggerError`.
    TriggerError,
    /// Inactive, but the cooldown has not elapsed yet: Active=False `ScalerCooldown`.
    Cooldown,
    /// Inactive, scale to zero/idle due, but `paused-scale-in` is set.
    ScaleInPaused,
    /// Nothing to change.
    Nothing,
}

/// A condition to set: status, reason, message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConditionUpdate {
    pub status: &'static str,
    pub reason: &'static str,
    pub message: &'static str,
}

impl Decision {
    /// The scale loop's branch on the active path (it sets Active=True).
    fn is_active_path(self) -> bool {
        matches!(
            self,
            Decision::ScaleTo {
                reason: ScaleReason::Activate,
                ..
            } | Decision::KeepActive
                | Decision::ScaleOutPaused
                | Decision::PartialTriggerError
        )
    }

    /// The Active condition this decision sets; `None` when paused (left untouched). A failed
    /// deactivation keeps `ScalerNotActive`, so this holds whether the `/scale` write succeeds or not.
    pub fn active_condition(self, force_activation: bool) -> Option<ConditionUpdate> {
        if self == Decision::Paused {
            return None;
        }
        Some(if self.is_active_path() {
            ConditionUpdate {
                status: "True",
                reason: condition_reasons::SCALER_ACTIVE,
                message: if force_activation {
                    messages::ACTIVE_FORCED
                } else {
                    messages::ACTIVE
                },
            }
        } else if self == Decision::Cooldown {
            ConditionUpdate {
                status: "False",
                reason: condition_reasons::SCALER_COOLDOWN,
                message: messages::COOLDOWN,
            }
        } else {
            ConditionUpdate {
                status: "False",
                reason: condition_reasons::SCALER_NOT_ACTIVE,
                message: messages::NOT_ACTIVE,
            }
        })
    }

    /// The Ready condition this decision sets, or `None` to leave Ready=True `ScaledObjectReady`.
    pub fn ready_condition(self) -> Option<ConditionUpdate> {
        match self {
            Decision::PartialTriggerError => Some(ConditionUpdate {
                status: "Unknown",
                reason: condition_reasons::PARTIAL_TRIGGER_ERROR,
                message: messages::PARTIAL_TRIGGER_ERROR,
            }),
            Decision::TriggerError => Some(ConditionUpdate {
                status: "False",
                reason: condition_reasons::TRIGGER_ERROR,
                message: messages::TRIGGER_ERROR,
            }),
            _ => None,
        }
    }

    /// Whether `status.lastActiveTime` becomes "now": always for [`Decision::KeepActive`], and for an
    /// activation once its `/scale` write succeeded.
    pub fn refreshes_last_active_time(self) -> bool {
        matches!(
            self,
            Decision::KeepActive
                | Decision::ScaleTo {
                    reason: ScaleReason::Activate,
                    ..
                }
        )
    }
}

/// upstream's `RequestScale` decision table (see the module docs).
pub fn decide(input: &ScaleLoopInput) -> Decision {
    if input.paused {
        return Decision::Paused;
    }
    let min = input.min_replica_count;
    let current = input.current_replicas;

    if input.is_active || input.force_activation {
        let below_min_in_idle_mode = input.idle_replica_count.is_some() && current < min;
        return if below_min_in_idle_mode || current == 0 {
            if input.paused_scale_out {
                Decision::ScaleOutPaused
            } else {
                Decision::ScaleTo {
                    replicas: min.max(1),
                    reason: ScaleReason::Activate,
                }
            }
        } else if input.is_error {
            Decision::PartialTriggerError
        } else {
            Decision::KeepActive
        };
    }

    let above_idle = input.idle_replica_count.is_some_and(|idle| current > idle);
    if input.is_error && input.fallback_replicas.is_some_and(|r| r != 0) {
        Decision::KeepFallbackToHpa
    } else if input.is_error && input.fallback_replicas.is_none() {
        Decision::TriggerError
    } else if above_idle || (current > 0 && min == 0) {
        scale_to_zero_or_idle(input)
    } else if input.idle_replica_count.is_none() && current < min {
        Decision::ScaleTo {
            replicas: min,
            reason: ScaleReason::EnforceMin,
        }
    } else {
        Decision::Nothing
    }
}

/// The start and length (seconds) of the cooldown that holds a scale to zero or idle: `lastActiveTime` and
/// `cooldownPeriod`, or, without lastActiveTime (target scaled outside KEDA, or never active), the creation
/// time and `initialCooldownPeriod`.
fn cooldown_start(input: &ScaleLoopInput) -> (Option<Timestamp>, i32) {
    match input.last_active_time {
        Some(last) => (Some(last), input.cooldown_period),
        None => (input.creation_time, input.initial_cooldown_period),
    }
}

/// When the cooldown ends: from this instant on (strictly after it) an inactive poll scales to zero or
/// idle. `None` when its start is unknown (it counts as elapsed) or the sum overflows.
pub fn cooldown_end(input: &ScaleLoopInput) -> Option<Timestamp> {
    let (since, period) = cooldown_start(input);
    since?
        .checked_add(SignedDuration::from_secs(i64::from(period)))
        .ok()
}

fn scale_to_zero_or_idle(input: &ScaleLoopInput) -> Decision {
    if input.paused_scale_in {
        return Decision::ScaleInPaused;
    }
    // Upstream compares with a strict "before now".
    let (since, period) = cooldown_start(input);
    let elapsed = match since {
        Some(t) => input.now.duration_since(t) > SignedDuration::from_secs(i64::from(period)),
        // No creation time: Go's zero time plus any period lies in the past.
        None => true,
    };
    if !elapsed {
        return Decision::Cooldown;
    }
    match input.idle_replica_count {
        Some(idle) => Decision::ScaleTo {
            replicas: idle,
            reason: ScaleReason::Deactivate(DeactivateTo::Idle),
        },
        None => Decision::ScaleTo {
            replicas: input.min_replica_count,
            reason: ScaleReason::Deactivate(DeactivateTo::Zero),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn ts(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("valid timestamp")
    }

    /// An active-less, error-less input at t=1000 s, created at t=0, min 0, default cooldowns.
    fn base() -> ScaleLoopInput {
        ScaleLoopInput {
            current_replicas: 0,
            min_replica_count: 0,
            idle_replica_count: None,
            is_active: false,
            is_error: false,
            fallback_replicas: None,
            paused: false,
            paused_scale_in: false,
            paused_scale_out: false,
            force_activation: false,
            last_active_time: None,
            creation_time: Some(ts(0)),
            now: ts(1000),
            cooldown_period: 300,
            initial_cooldown_period: 0,
        }
    }

    fn scale(replicas: i32, reason: ScaleReason) -> Decision {
        Decision::ScaleTo { replicas, reason }
    }

    #[test]
    fn decision_table() {
        use DeactivateTo::*;
        use ScaleReason::*;
        type Edit = fn(&mut ScaleLoopInput);
        let cases: Vec<(&str, Edit, Decision)> = vec![
            (
                "0 -> 1 on activity",
                |i| i.is_active = true,
                scale(1, Activate),
            ),
            (
                "0 -> min on activity",
                |i| {
                    i.is_active = true;
                    i.min_replica_count = 3
                },
                scale(3, Activate),
            ),
            (
                "idle -> min on activity",
                |i| {
                    i.is_active = true;
                    i.idle_replica_count = Some(0);
                    i.min_replica_count = 2;
                    i.current_replicas = 1
                },
                scale(2, Activate),
            ),
            (
                "active and running",
                |i| {
                    i.is_active = true;
                    i.current_replicas = 4
                },
                Decision::KeepActive,
            ),
            (
                "active, running, some errors",
                |i| {
                    i.is_active = true;
                    i.is_error = true;
                    i.current_replicas = 4
                },
                Decision::PartialTriggerError,
            ),
            (
                "active from zero with errors still activates",
                |i| {
                    i.is_active = true;
                    i.is_error = true
                },
                scale(1, Activate),
            ),
            (
                "force-activation without activity",
                |i| i.force_activation = true,
                scale(1, Activate),
            ),
            (
                "paused-scale-out blocks activation",
                |i| {
                    i.is_active = true;
                    i.paused_scale_out = true
                },
                Decision::ScaleOutPaused,
            ),
            (
                "cooldown not elapsed",
                |i| {
                    i.current_replicas = 2;
                    i.last_active_time = Some(ts(900))
                },
                Decision::Cooldown,
            ),
            (
                "cooldown exactly elapsed is still cooling down (strict)",
                |i| {
                    i.current_replicas = 2;
                    i.last_active_time = Some(ts(700))
                },
                Decision::Cooldown,
            ),
            (
                "cooldown elapsed -> 0",
                |i| {
                    i.current_replicas = 2;
                    i.last_active_time = Some(ts(699))
                },
                scale(0, Deactivate(Zero)),
            ),
            (
                "never active, initial cooldown elapsed -> 0",
                |i| {
                    i.current_replicas = 2;
                    i.initial_cooldown_period = 60
                },
                scale(0, Deactivate(Zero)),
            ),
            (
                "never active, initial cooldown running",
                |i| {
                    i.current_replicas = 2;
                    i.initial_cooldown_period = 5000
                },
                Decision::Cooldown,
            ),
            (
                "no creation time counts as elapsed",
                |i| {
                    i.current_replicas = 2;
                    i.creation_time = None;
                    i.initial_cooldown_period = 5000
                },
                scale(0, Deactivate(Zero)),
            ),
            (
                "idle mode: min -> idle after cooldown",
                |i| {
                    i.idle_replica_count = Some(0);
                    i.min_replica_count = 2;
                    i.current_replicas = 2;
                    i.last_active_time = Some(ts(0))
                },
                scale(0, Deactivate(Idle)),
            ),
            (
                "idle mode at idle: nothing",
                |i| {
                    i.idle_replica_count = Some(0);
                    i.min_replica_count = 2
                },
                Decision::Nothing,
            ),
            (
                "below min without idle -> min",
                |i| {
                    i.min_replica_count = 2;
                    i.current_replicas = 1
                },
                scale(2, EnforceMin),
            ),
            (
                "at min (>0), inactive: HPA's business",
                |i| {
                    i.min_replica_count = 2;
                    i.current_replicas = 5
                },
                Decision::Nothing,
            ),
            ("already at zero", |_| {}, Decision::Nothing),
            (
                "error without fallback",
                |i| {
                    i.is_error = true;
                    i.current_replicas = 3
                },
                Decision::TriggerError,
            ),
            (
                "error with fallback keeps the target for the HPA",
                |i| {
                    i.is_error = true;
                    i.current_replicas = 3;
                    i.fallback_replicas = Some(5)
                },
                Decision::KeepFallbackToHpa,
            ),
            (
                "error with fallback.replicas 0 scales to zero",
                |i| {
                    i.is_error = true;
                    i.current_replicas = 3;
                    i.fallback_replicas = Some(0)
                },
                scale(0, Deactivate(Zero)),
            ),
            (
                "paused-scale-in skips scale to zero",
                |i| {
                    i.current_replicas = 3;
                    i.paused_scale_in = true
                },
                Decision::ScaleInPaused,
            ),
            (
                "paused wins over everything",
                |i| {
                    i.paused = true;
                    i.is_active = true
                },
                Decision::Paused,
            ),
        ];
        for (name, edit, want) in cases {
            let mut input = base();
            edit(&mut input);
            assert_eq!(decide(&input), want, "{name}");
        }
    }

    #[test]
    fn conditions_follow_the_decision() {
        let active = scale(1, ScaleReason::Activate).active_condition(false);
        assert_eq!(
            active,
            Some(ConditionUpdate {
                status: "True",
                reason: "ScalerActive",
                message: messages::ACTIVE
            })
        );
        assert_eq!(
            Decision::KeepActive
                .active_condition(true)
                .map(|c| c.message),
            Some(messages::ACTIVE_FORCED)
        );
        assert_eq!(
            Decision::Cooldown
                .active_condition(false)
                .map(|c| (c.status, c.reason)),
            Some(("False", "ScalerCooldown"))
        );
        assert_eq!(
            Decision::TriggerError
                .active_condition(false)
                .map(|c| c.reason),
            Some("ScalerNotActive")
        );
        assert_eq!(Decision::Paused.active_condition(false), None);
        assert_eq!(
            Decision::TriggerError
                .ready_condition()
                .map(|c| (c.status, c.reason)),
            Some(("False", "TriggerError"))
        );
        assert_eq!(
            Decision::PartialTriggerError
                .ready_condition()
                .map(|c| (c.status, c.reason)),
            Some(("Unknown", "PartialTriggerError"))
        );
        assert_eq!(Decision::Nothing.ready_condition(), None);
        assert!(Decision::KeepActive.refreshes_last_active_time());
        assert!(scale(1, ScaleReason::Activate).refreshes_last_active_time());
        assert!(!Decision::ScaleOutPaused.refreshes_last_active_time());
        assert!(
            !scale(0, ScaleReason::Deactivate(DeactivateTo::Zero)).refreshes_last_active_time()
        );
    }

    #[test]
    fn cooldown_end_follows_the_decision() {
        let mut input = base();
        input.current_replicas = 2;
        input.last_active_time = Some(ts(900));
        assert_eq!(cooldown_end(&input), Some(ts(1200)));
        input.now = ts(1200);
        assert_eq!(
            decide(&input),
            Decision::Cooldown,
            "still cooling at the end"
        );
        input.now = ts(1201);
        assert_eq!(
            decide(&input),
            scale(0, ScaleReason::Deactivate(DeactivateTo::Zero))
        );
        input.last_active_time = None;
        input.initial_cooldown_period = 60;
        assert_eq!(cooldown_end(&input), Some(ts(60)), "from creation");
        input.creation_time = None;
        assert_eq!(cooldown_end(&input), None);
    }

    #[test]
    fn activity_rules() {
        assert!(is_active(1.0, 0.0));
        assert!(!is_active(0.0, 0.0), "strictly greater");
        assert!(!is_active(5.0, 5.0));
    }

    #[test]
    fn input_from_scaled_object() {
        let so: ScaledObject = serde_yaml_ng::from_str(
            r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: w
  creationTimestamp: "2024-01-01T00:00:00Z"
  annotations: {autoscaling.keda.sh/paused-scale-in: "true", autoscaling.keda.sh/force-activation: "false"}
spec:
  scaleTargetRef: {name: web}
  minReplicaCount: 2
  idleReplicaCount: 0
  cooldownPeriod: 60
  fallback: {failureThreshold: 3, replicas: 4}
  triggers: [{type: cron, metadata: {}}]
status:
  lastActiveTime: "2024-01-01T00:10:00Z"
"#,
        )
        .expect("parses");
        let now: Timestamp = "2024-01-01T00:20:00Z".parse().expect("ts");
        let input = ScaleLoopInput::from_scaled_object(&so, 2, false, false, now);
        assert_eq!(input.min_replica_count, 2);
        assert_eq!(input.idle_replica_count, Some(0));
        assert_eq!(input.fallback_replicas, Some(4));
        assert!(input.paused_scale_in && !input.force_activation && !input.paused);
        assert_eq!(input.cooldown_period, 60);
        assert_eq!(
            input.last_active_time,
            Some("2024-01-01T00:10:00Z".parse().expect("ts"))
        );
        assert_eq!(decide(&input), Decision::ScaleInPaused);
    }
}
