//! `cron`: `desiredReplicas` while inside a window between two cron schedules, in an IANA timezone.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;

use crate::input::METADATA;
use crate::{
    BuildContext, MetricSpec, MetricTargetType, Sample, Scaler, ScalerError, TriggerConfig,
    TriggerInput,
};

#[derive(Clone, Debug)]
pub struct CronConfig {
    pub index: usize,
    pub timezone: Tz,
    pub timezone_name: String,
    pub start_expr: String,
    pub end_expr: String,
    /// Shared: a parsed schedule is about 5 KB (croner keeps a table per field, years included), and
    /// the same expressions recur across objects (a heap profile at 500 cron objects showed 19 KB each).
    start: Arc<Cron>,
    end: Arc<Cron>,
    pub desired_replicas: i64,
    pub metric_type: MetricTargetType,
}

pub fn parse(input: &TriggerInput<'_>) -> Result<Box<dyn TriggerConfig>, ScalerError> {
    Ok(Box::new(parse_config(input)?))
}

/// Parsed schedules by expression, shared by every trigger that uses one (entries of schedules no trigger
/// holds any more are dropped as the table grows).
fn interned(expr: &str) -> Result<Arc<Cron>, croner::errors::CronError> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, Weak};
    static SCHEDULES: OnceLock<Mutex<HashMap<String, Weak<Cron>>>> = OnceLock::new();
    let table = SCHEDULES.get_or_init(Default::default);
    if let Some(cron) = table
        .lock()
        .ok()
        .and_then(|t| t.get(expr).and_then(Weak::upgrade))
    {
        return Ok(cron);
    }
    let cron = Arc::new(expr.parse::<Cron>()?);
    if let Ok(mut t) = table.lock() {
        if t.len() >= 64 && t.len().is_power_of_two() {
            t.retain(|_, w| w.strong_count() > 0);
        }
        t.insert(expr.to_owned(), Arc::downgrade(&cron));
    }
    Ok(cron)
}

fn schedule(input: &TriggerInput<'_>, field: &str, expr: &str) -> Result<Arc<Cron>, ScalerError> {
    // Five fields, as upstream's parser (minute hour day-of-month month day-of-week).
    if expr.split_whitespace().count() != 5 {
        return Err(input.error(
            field,
            format!("{expr:?} must have 5 fields: minute hour day-of-month month day-of-week"),
        ));
    }
    interned(expr).map_err(|e| input.error(field, format!("{expr:?} is not a cron schedule: {e}")))
}

pub fn parse_config(input: &TriggerInput<'_>) -> Result<CronConfig, ScalerError> {
    let metric_type = input.external_metric_type()?;
    let timezone_name: String = input.field("timezone").order(METADATA).required()?;
    let timezone: Tz = timezone_name.parse().map_err(|_| {
        input.error(
            "timezone",
            format!("{timezone_name:?} is not an IANA timezone (like Asia/Seoul)"),
        )
    })?;
    let start_expr: String = input.field("start").order(METADATA).required()?;
    let end_expr: String = input.field("end").order(METADATA).required()?;
    let start = schedule(input, "start", &start_expr)?;
    let end = schedule(input, "end", &end_expr)?;
    if start_expr == end_expr {
        return Err(input.error("end", "start and end can not have exactly same time input"));
    }
    let desired_replicas: i64 = input.field("desiredReplicas").order(METADATA).required()?;
    if desired_replicas == 0 {
        return Err(input.error("desiredReplicas", "must not be 0"));
    }
    Ok(CronConfig {
        index: input.index,
        timezone,
        timezone_name,
        start_expr,
        end_expr,
        start,
        end,
        desired_replicas,
        metric_type,
    })
}

/// Upstream's compaction of a schedule into a metric-name-safe string.
fn compact(expr: &str) -> String {
    expr.replace(' ', "")
        .replace('*', "x")
        .replace('/', "Sl")
        .replace('?', "Qm")
        .replace(',', "Cm")
}

impl CronConfig {
    /// Inside the window exactly when the next end comes before the next start; this also covers windows
    /// that cross midnight or a week boundary.
    pub fn in_window(&self, now: DateTime<Utc>) -> Result<bool, String> {
        let local = now.with_timezone(&self.timezone);
        let next_start = self
            .start
            .find_next_occurrence(&local, false)
            .map_err(|e| e.to_string())?;
        let next_end = self
            .end
            .find_next_occurrence(&local, false)
            .map_err(|e| e.to_string())?;
        Ok(next_end < next_start)
    }

    pub fn sample_at(&self, now: DateTime<Utc>) -> Result<Sample, ScalerError> {
        let active = self
            .in_window(now)
            .map_err(|message| ScalerError::Backend {
                trigger: self.trigger(),
                action: "computing the next schedule time",
                message,
            })?;
        let value = if active {
            self.desired_replicas as f64
        } else {
            0.0
        };
        Ok(Sample { value, active })
    }
}

#[async_trait::async_trait]
impl TriggerConfig for CronConfig {
    fn metric_spec(&self) -> MetricSpec {
        MetricSpec::External {
            metric_name: crate::external_metric_name(
                self.index,
                &format!(
                    "cron-{}-{}-{}",
                    self.timezone_name,
                    compact(&self.start_expr),
                    compact(&self.end_expr)
                ),
            ),
            target_type: self.metric_type,
            // Upstream targets 1 per replica, so the HPA asks for desiredReplicas pods inside the window.
            target: 1.0,
        }
    }

    fn trigger(&self) -> crate::TriggerRef {
        crate::TriggerRef {
            index: self.index,
            trigger_type: "cron".into(),
        }
    }

    /// A sample is a computation on the clock, no IO.
    fn timeouts(&self, _defaults: &crate::TimeoutDefaults) -> crate::ScalerTimeouts {
        crate::ScalerTimeouts::NO_IO
    }

    async fn build(&self, _ctx: &BuildContext) -> Result<Arc<dyn Scaler>, ScalerError> {
        Ok(Arc::new(self.clone()))
    }
}

#[async_trait::async_trait]
impl Scaler for CronConfig {
    async fn sample(&self) -> Result<Sample, ScalerError> {
        self.sample_at(Utc::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::collections::BTreeMap;

    fn config(md: &[(&str, &str)]) -> Result<CronConfig, ScalerError> {
        let md: BTreeMap<String, String> = md
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let empty = BTreeMap::new();
        parse_config(&TriggerInput {
            index: 0,
            trigger_type: "cron",
            namespace: "default",
            name: None,
            metadata: &md,
            resolved_env: &empty,
            auth_params: &empty,
            metric_type: None,
        })
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid time")
    }

    #[test]
    fn objects_with_the_same_schedule_share_its_parse() {
        let md = [
            ("timezone", "UTC"),
            ("start", "0 6 * * *"),
            ("end", "0 20 * * *"),
            ("desiredReplicas", "2"),
        ];
        let (a, b) = (config(&md).unwrap(), config(&md).unwrap());
        assert!(Arc::ptr_eq(&a.start, &b.start) && Arc::ptr_eq(&a.end, &b.end));
        assert!(!Arc::ptr_eq(&a.start, &a.end));
        // A built scaler is a clone of the config: no copy of the schedules.
        let clone = a.clone();
        assert!(Arc::ptr_eq(&clone.start, &a.start));
        // Still evaluated per object, in its own timezone.
        assert!(a.in_window(utc(2026, 3, 2, 12, 0)).unwrap());
        assert!(!a.in_window(utc(2026, 3, 2, 21, 0)).unwrap());
    }

    #[test]
    fn parse_table() {
        let ok = [
            ("timezone", "Asia/Seoul"),
            ("start", "0 9 * * 1-5"),
            ("end", "0 18 * * 1-5"),
            ("desiredReplicas", "4"),
        ];
        let c = config(&ok).unwrap();
        assert_eq!(c.desired_replicas, 4);
        assert_eq!(
            c.metric_spec(),
            MetricSpec::External {
                metric_name: "s0-cron-Asia-Seoul-09xx1-5-018xx1-5".into(),
                target_type: MetricTargetType::AverageValue,
                target: 1.0
            }
        );
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[
                    ("start", "0 9 * * *"),
                    ("end", "0 18 * * *"),
                    ("desiredReplicas", "4"),
                ],
                "timezone",
            ),
            (
                &[
                    ("timezone", "Mars/Olympus"),
                    ("start", "0 9 * * *"),
                    ("end", "0 18 * * *"),
                    ("desiredReplicas", "4"),
                ],
                "timezone",
            ),
            (
                &[
                    ("timezone", "UTC"),
                    ("start", "0 9 * *"),
                    ("end", "0 18 * * *"),
                    ("desiredReplicas", "4"),
                ],
                "start",
            ),
            (
                &[
                    ("timezone", "UTC"),
                    ("start", "0 9 * * *"),
                    ("end", "61 18 * * *"),
                    ("desiredReplicas", "4"),
                ],
                "end",
            ),
            (
                &[
                    ("timezone", "UTC"),
                    ("start", "0 9 * * *"),
                    ("end", "0 9 * * *"),
                    ("desiredReplicas", "4"),
                ],
                "end",
            ),
            (
                &[
                    ("timezone", "UTC"),
                    ("start", "0 9 * * *"),
                    ("end", "0 18 * * *"),
                ],
                "desiredReplicas",
            ),
            (
                &[
                    ("timezone", "UTC"),
                    ("start", "0 9 * * *"),
                    ("end", "0 18 * * *"),
                    ("desiredReplicas", "0"),
                ],
                "desiredReplicas",
            ),
            (
                &[
                    ("timezone", "UTC"),
                    ("start", "0 9 * * *"),
                    ("end", "0 18 * * *"),
                    ("desiredReplicas", "two"),
                ],
                "desiredReplicas",
            ),
        ];
        for (md, field) in cases {
            let err = config(md).unwrap_err();
            assert_eq!(err.field(), Some(*field), "{md:?}: {err}");
        }
    }

    #[test]
    fn windows_in_a_timezone_and_across_midnight() {
        // 09:00–18:00 Seoul (UTC+9) on weekdays. 2026-11-30 is a Monday.
        let c = config(&[
            ("timezone", "Asia/Seoul"),
            ("start", "0 9 * * 1-5"),
            ("end", "0 18 * * 1-5"),
            ("desiredReplicas", "4"),
        ])
        .unwrap();
        assert!(
            !c.in_window(utc(2026, 11, 29, 23, 59)).unwrap(),
            "08:59 Monday Seoul"
        );
        assert!(
            c.in_window(utc(2026, 11, 30, 0, 1)).unwrap(),
            "09:01 Monday Seoul"
        );
        assert!(
            c.in_window(utc(2026, 11, 30, 8, 59)).unwrap(),
            "17:59 Monday Seoul"
        );
        assert!(
            !c.in_window(utc(2026, 11, 30, 9, 1)).unwrap(),
            "18:01 Monday Seoul"
        );
        assert!(
            !c.in_window(utc(2026, 11, 28, 3, 0)).unwrap(),
            "Saturday noon Seoul"
        );
        assert_eq!(
            c.sample_at(utc(2026, 11, 30, 1, 0)).unwrap(),
            Sample {
                value: 4.0,
                active: true
            }
        );
        assert_eq!(
            c.sample_at(utc(2026, 11, 30, 10, 0)).unwrap(),
            Sample {
                value: 0.0,
                active: false
            }
        );

        // 22:00–06:00 UTC crosses midnight.
        let n = config(&[
            ("timezone", "UTC"),
            ("start", "0 22 * * *"),
            ("end", "0 6 * * *"),
            ("desiredReplicas", "2"),
        ])
        .unwrap();
        assert!(n.in_window(utc(2026, 11, 30, 23, 0)).unwrap());
        assert!(n.in_window(utc(2026, 12, 1, 5, 59)).unwrap());
        assert!(!n.in_window(utc(2026, 12, 1, 6, 1)).unwrap());
        assert!(!n.in_window(utc(2026, 11, 30, 21, 59)).unwrap());
    }
}
