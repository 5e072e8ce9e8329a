//! The lag arithmetic, without IO: one partition's lag from its committed offset and log end, then the
//! trigger's total with upstream's caps. Both `kafka` and `apache-kafka` use it (their differences are
//! flags of [`PartitionRules`]).

use std::collections::HashMap;

/// Kafka's "no committed offset" (OffsetFetch answers -1 for a partition the group never committed).
pub const INVALID_OFFSET: i64 = -1;

/// `offsetResetPolicy`: where a consumer without a committed offset would start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OffsetResetPolicy {
    /// At the log end: there is nothing to catch up, but upstream reports a lag of 1 so that one
    /// consumer starts and commits (unless `scaleToZeroOnInvalidOffset`).
    Latest,
    /// At the log start: the whole log end counts as lag.
    Earliest,
}

impl OffsetResetPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            OffsetResetPolicy::Latest => "latest",
            OffsetResetPolicy::Earliest => "earliest",
        }
    }
}

/// The settings that decide one partition's lag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionRules {
    pub offset_reset_policy: OffsetResetPolicy,
    pub scale_to_zero_on_invalid_offset: bool,
    pub exclude_persistent_lag: bool,
}

/// One partition's lag: `lag` feeds the metric; `lag_with_persistent` (the same unless
/// `excludePersistentLag` left this partition out) feeds activation, so a stuck partition still keeps the
/// workload from staying at zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionLag {
    pub lag: i64,
    pub lag_with_persistent: i64,
}

impl PartitionLag {
    fn both(lag: i64) -> PartitionLag {
        PartitionLag {
            lag,
            lag_with_persistent: lag,
        }
    }
}

/// The committed offset each partition had at the previous poll (`excludePersistentLag`), per trigger.
pub type PreviousOffsets = HashMap<(String, i32), i64>;

/// The lag of `topic`/`partition` given the group's committed offset and the partition's log end
/// (`None`: the broker did not report it, which upstream treats as no lag). `previous` is updated as
/// upstream does: the committed offset is remembered when it is new or moved.
pub fn partition_lag(
    rules: &PartitionRules,
    topic: &str,
    partition: i32,
    committed: i64,
    log_end: Option<i64>,
    previous: &mut PreviousOffsets,
) -> PartitionLag {
    if committed == INVALID_OFFSET {
        // Decided before the log end is looked at, so scaleToZeroOnInvalidOffset holds even when the
        // broker left the partition out of its answer.
        match rules.offset_reset_policy {
            OffsetResetPolicy::Latest => {
                return PartitionLag::both(if rules.scale_to_zero_on_invalid_offset {
                    0
                } else {
                    1
                });
            }
            OffsetResetPolicy::Earliest if rules.scale_to_zero_on_invalid_offset => {
                return PartitionLag::both(0);
            }
            OffsetResetPolicy::Earliest => {}
        }
    }
    let Some(log_end) = log_end else {
        return PartitionLag::both(0);
    };
    if committed == INVALID_OFFSET {
        return PartitionLag::both(log_end);
    }
    let lag = log_end - committed;
    if rules.exclude_persistent_lag {
        let key = (topic.to_owned(), partition);
        if previous.get(&key) == Some(&committed) {
            // The consumer has not moved since the last poll: more consumers would not help.
            return PartitionLag {
                lag: 0,
                lag_with_persistent: lag,
            };
        }
        previous.insert(key, committed);
    }
    PartitionLag::both(lag)
}

/// The settings that cap the total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TotalRules {
    pub lag_threshold: i64,
    pub allow_idle_consumers: bool,
    pub limit_to_partitions_with_lag: bool,
    pub ensure_even_distribution_of_partitions: bool,
}

/// The trigger's metric and activation value: `(total lag, total lag with persistent)`. Unless idle
/// consumers are allowed, the metric is capped so the HPA never asks for more consumers than there are
/// partitions (or partitions with lag); `ensureEvenDistributionOfPartitions` rounds the consumer count up
/// to a divisor of the partition count.
pub fn total_lag(rules: &TotalRules, partitions: &[PartitionLag]) -> (i64, i64) {
    let mut total: i64 = partitions.iter().map(|p| p.lag).sum();
    let with_persistent: i64 = partitions.iter().map(|p| p.lag_with_persistent).sum();
    let with_lag = partitions.iter().filter(|p| p.lag > 0).count() as i64;
    let count = partitions.len() as i64;
    if !rules.allow_idle_consumers
        || rules.limit_to_partitions_with_lag
        || rules.ensure_even_distribution_of_partitions
    {
        let mut upper_bound = count;
        if rules.ensure_even_distribution_of_partitions {
            total = next_balanced_factor(total, count, rules.lag_threshold) * rules.lag_threshold;
        }
        if rules.limit_to_partitions_with_lag {
            upper_bound = with_lag;
        }
        // Integer division, as upstream: a remainder never raises the cap.
        if total / rules.lag_threshold > upper_bound {
            total = upper_bound * rules.lag_threshold;
        }
    }
    (total, with_persistent)
}

/// The divisors of `n` in ascending order (none for `n < 1`).
pub fn factors(n: i64) -> Vec<i64> {
    if n < 1 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i * i <= n {
        if n % i == 0 {
            out.push(i);
            if i != n / i {
                out.push(n / i);
            }
        }
        i += 1;
    }
    out.sort_unstable();
    out
}

/// The smallest divisor of the partition count whose consumers handle `total_lag` at `lag_threshold`
/// each; the partition count when none does.
pub fn next_balanced_factor(total_lag: i64, partitions: i64, lag_threshold: i64) -> i64 {
    factors(partitions)
        .into_iter()
        .find(|f| f * lag_threshold >= total_lag)
        .unwrap_or(partitions)
}

/// The threshold a replay that sees only the trigger's metric (`keda simulate`) may compare it with:
/// `Some` when the metric of [`total_lag`] is above `activation_lag_threshold` exactly when the lag the
/// scaler activates on is, for any partition lags. Never with `excludePersistentLag` (activation counts
/// lag the metric leaves out). A capped metric is at least one `lagThreshold` once it is capped, so it
/// agrees when the threshold is below that. `ensureEvenDistributionOfPartitions` rounds any lag up (a
/// zero lag too, unless `limitToPartitionsWithLag` caps it back to zero), so only "any lag at all"
/// (threshold 0, with that cap) survives it.
pub fn metric_activation_threshold(
    partition: &PartitionRules,
    total: &TotalRules,
    activation_lag_threshold: i64,
) -> Option<f64> {
    let capped = !total.allow_idle_consumers || total.limit_to_partitions_with_lag;
    let follows = if partition.exclude_persistent_lag {
        false
    } else if total.ensure_even_distribution_of_partitions {
        total.limit_to_partitions_with_lag && activation_lag_threshold <= 0
    } else {
        !capped || activation_lag_threshold < total.lag_threshold
    };
    follows.then_some(activation_lag_threshold as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATEST: PartitionRules = PartitionRules {
        offset_reset_policy: OffsetResetPolicy::Latest,
        scale_to_zero_on_invalid_offset: false,
        exclude_persistent_lag: false,
    };

    fn rules(policy: OffsetResetPolicy, zero: bool) -> PartitionRules {
        PartitionRules {
            offset_reset_policy: policy,
            scale_to_zero_on_invalid_offset: zero,
            exclude_persistent_lag: false,
        }
    }

    fn lag(lag: i64, lag_with_persistent: i64) -> PartitionLag {
        PartitionLag {
            lag,
            lag_with_persistent,
        }
    }

    /// Upstream's TestGetLagForPartition_MissingPartition, plus the plain invalid-offset rules.
    #[test]
    fn one_partition() {
        use OffsetResetPolicy::{Earliest, Latest};
        let cases: &[(&str, PartitionRules, i64, Option<i64>, PartitionLag)] = &[
            (
                "earliest, zero on invalid, no log end",
                rules(Earliest, true),
                INVALID_OFFSET,
                None,
                lag(0, 0),
            ),
            (
                "earliest, invalid offset, no log end",
                rules(Earliest, false),
                INVALID_OFFSET,
                None,
                lag(0, 0),
            ),
            (
                "valid offset, no log end",
                rules(Earliest, false),
                100,
                None,
                lag(0, 0),
            ),
            (
                "valid offsets",
                rules(Earliest, false),
                100,
                Some(150),
                lag(50, 50),
            ),
            (
                "latest, zero on invalid",
                rules(Latest, true),
                INVALID_OFFSET,
                Some(150),
                lag(0, 0),
            ),
            (
                "latest, invalid offset counts 1",
                rules(Latest, false),
                INVALID_OFFSET,
                Some(150),
                lag(1, 1),
            ),
            (
                "latest, invalid offset counts 1 without a log end",
                rules(Latest, false),
                INVALID_OFFSET,
                None,
                lag(1, 1),
            ),
            (
                "earliest, invalid offset: the whole log",
                rules(Earliest, false),
                INVALID_OFFSET,
                Some(150),
                lag(150, 150),
            ),
            (
                "earliest, zero on invalid with a log end",
                rules(Earliest, true),
                INVALID_OFFSET,
                Some(150),
                lag(0, 0),
            ),
            ("caught up", LATEST, 150, Some(150), lag(0, 0)),
        ];
        for (name, rules, committed, log_end, want) in cases {
            let got = partition_lag(rules, "t", 0, *committed, *log_end, &mut HashMap::new());
            assert_eq!(got, *want, "{name}");
        }
    }

    #[test]
    fn persistent_lag_is_left_out_of_the_metric_but_not_of_activation() {
        let rules = PartitionRules {
            exclude_persistent_lag: true,
            ..LATEST
        };
        let mut previous = PreviousOffsets::new();
        // First poll: nothing known, the lag counts and the offset is remembered.
        assert_eq!(
            partition_lag(&rules, "t", 0, 10, Some(20), &mut previous),
            lag(10, 10)
        );
        // Same committed offset: persistent.
        assert_eq!(
            partition_lag(&rules, "t", 0, 10, Some(25), &mut previous),
            lag(0, 15)
        );
        // Another partition is tracked on its own.
        assert_eq!(
            partition_lag(&rules, "t", 1, 10, Some(12), &mut previous),
            lag(2, 2)
        );
        // The consumer moved: counts again.
        assert_eq!(
            partition_lag(&rules, "t", 0, 11, Some(25), &mut previous),
            lag(14, 14)
        );
        // Without the option nothing is remembered.
        let mut untouched = PreviousOffsets::new();
        partition_lag(&LATEST, "t", 0, 10, Some(20), &mut untouched);
        assert!(untouched.is_empty());
    }

    fn total(
        threshold: i64,
        idle: bool,
        limit: bool,
        even: bool,
        partitions: &[PartitionLag],
    ) -> (i64, i64) {
        total_lag(
            &TotalRules {
                lag_threshold: threshold,
                allow_idle_consumers: idle,
                limit_to_partitions_with_lag: limit,
                ensure_even_distribution_of_partitions: even,
            },
            partitions,
        )
    }

    #[test]
    fn totals_and_caps() {
        let three = [lag(100, 100), lag(0, 0), lag(5, 5)];
        // Capped at partitions × threshold: 3 partitions, threshold 10 → 30.
        assert_eq!(total(10, false, false, false, &three), (30, 105));
        // Idle consumers allowed: no cap.
        assert_eq!(total(10, true, false, false, &three), (105, 105));
        // Only partitions with lag (2) count.
        assert_eq!(total(10, false, true, false, &three), (20, 105));
        // Under the cap: unchanged.
        assert_eq!(total(100, false, false, false, &three), (105, 105));
        // The cap uses integer division: 35/10 = 3 is not above 3 partitions.
        assert_eq!(
            total(
                10,
                false,
                false,
                false,
                &[lag(35, 35), lag(0, 0), lag(0, 0)]
            ),
            (35, 35)
        );
        // Persistent lag lowers the metric, not the activation value.
        assert_eq!(
            total(10, true, false, false, &[lag(0, 7), lag(3, 3)]),
            (3, 10)
        );
        assert_eq!(total(10, false, false, false, &[]), (0, 0));
    }

    #[test]
    fn even_distribution_rounds_up_to_a_divisor() {
        // 6 partitions, lag 25 at threshold 10: 3 consumers (a divisor of 6) → 30.
        let six = [
            lag(25, 25),
            lag(0, 0),
            lag(0, 0),
            lag(0, 0),
            lag(0, 0),
            lag(0, 0),
        ];
        assert_eq!(total(10, false, false, true, &six), (30, 25));
        // lag 41 needs 5 consumers; the next divisor is 6 → 60, within the cap of 6 × 10.
        let mut more = six;
        more[0] = lag(41, 41);
        assert_eq!(total(10, false, false, true, &more), (60, 41));
        // Beyond every divisor: capped at the partition count.
        more[0] = lag(1000, 1000);
        assert_eq!(total(10, true, false, true, &more), (60, 1000));
    }

    /// Upstream's TestFindFactors and TestGetNextFactor.
    #[test]
    fn factors_and_next_factor() {
        assert_eq!(factors(10), [1, 2, 5, 10]);
        assert_eq!(factors(13), [1, 13]);
        assert_eq!(factors(17), [1, 17]);
        assert_eq!(factors(25), [1, 5, 25]);
        assert_eq!(factors(50), [1, 2, 5, 10, 25, 50]);
        assert_eq!(factors(100), [1, 2, 4, 5, 10, 20, 25, 50, 100]);
        assert!(factors(0).is_empty());
        for (lag, want) in [
            (10, 1),
            (20, 2),
            (40, 4),
            (50, 5),
            (99, 10),
            (100, 10),
            (101, 20),
        ] {
            assert_eq!(next_balanced_factor(lag, 100, 10), want, "lag {lag}");
        }
    }

    /// Every partition layout up to three partitions and lags up to 40, under every combination of
    /// rules: where [`metric_activation_threshold`] gives a threshold, the metric's activity equals the
    /// scaler's; where it gives none, some layout makes them differ (so it refuses no more than needed).
    #[test]
    fn metric_activation_threshold_agrees_with_the_scalers_activation() {
        let lags: Vec<i64> = (0..=40).step_by(3).collect();
        let mut layouts: Vec<Vec<(i64, i64)>> = Vec::new();
        for &a in &lags {
            for &pa in &lags {
                layouts.push(vec![(a, pa.max(a))]);
                for &b in &lags {
                    layouts.push(vec![(a, pa.max(a)), (b, b)]);
                    layouts.push(vec![(a, a), (b, b), (0, pa)]);
                }
            }
        }
        let bools = [false, true];
        for exclude in bools {
            for idle in bools {
                for limit in bools {
                    for even in bools {
                        for lag_threshold in [1, 5, 10] {
                            for activation in [0, 4, 5, 9, 10, 30] {
                                let p = PartitionRules {
                                    exclude_persistent_lag: exclude,
                                    ..LATEST
                                };
                                let t = TotalRules {
                                    lag_threshold,
                                    allow_idle_consumers: idle,
                                    limit_to_partitions_with_lag: limit,
                                    ensure_even_distribution_of_partitions: even,
                                };
                                let threshold = metric_activation_threshold(&p, &t, activation);
                                let differs = layouts.iter().find(|layout| {
                                    let parts: Vec<PartitionLag> = layout
                                        .iter()
                                        .map(|&(l, pl)| PartitionLag {
                                            // Persistent lag exists only where it is excluded.
                                            lag: if exclude { l } else { pl },
                                            lag_with_persistent: pl,
                                        })
                                        .collect();
                                    let (metric, with_persistent) = total_lag(&t, &parts);
                                    crate::is_active(metric as f64, activation as f64)
                                        != crate::is_active(
                                            with_persistent as f64,
                                            activation as f64,
                                        )
                                });
                                let case = format!(
                                    "exclude {exclude} idle {idle} limit {limit} even {even} lagThreshold {lag_threshold} activation {activation}"
                                );
                                match threshold {
                                    Some(v) => {
                                        assert_eq!(v, activation as f64, "{case}");
                                        assert_eq!(differs, None, "{case}");
                                    }
                                    None => {
                                        assert!(differs.is_some(), "{case}: refused needlessly")
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
