//! Kubernetes quantity strings exactly as upstream's Go code (apimachinery `resource.Quantity`) prints them.
//!
//! The HPA and the external metrics API compare and display these strings, so "70" must not become "70.0"
//! and 0.5 must become "500m". Two upstream paths exist and differ on purpose:
//! - [`metric_quantity`]: `resource.MustParse(fmt.Sprintf("%.3f", v))` (scaler targets and metric values).
//!   Go keeps the parsed string when it already looks canonical, so 1.5 stays `"1.500"`.
//! - [`milli_quantity`]: `resource.NewMilliQuantity(m, DecimalSI)` (composite target, fallback values),
//!   always printed canonically, so 1.5 becomes `"1500m"`.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Decimal SI suffixes by power of ten, as apimachinery prints them.
const DECIMAL_SUFFIXES: [(i32, &str); 10] = [
    (-9, "n"),
    (-6, "u"),
    (-3, "m"),
    (0, ""),
    (3, "k"),
    (6, "M"),
    (9, "G"),
    (12, "T"),
    (15, "P"),
    (18, "E"),
];

const BINARY_SUFFIXES: [(&str, i32); 6] = [
    ("Ki", 10),
    ("Mi", 20),
    ("Gi", 30),
    ("Ti", 40),
    ("Pi", 50),
    ("Ei", 60),
];

/// Go's `resource.NewMilliQuantity(milli, resource.DecimalSI).String()`.
pub fn milli_quantity(milli: i64) -> Quantity {
    let negative = milli < 0;
    Quantity(canonical_decimal(
        negative,
        &milli.unsigned_abs().to_string(),
        -3,
    ))
}

/// Go's `resource.NewMilliQuantity(int64(value*1000), resource.DecimalSI)`: the product is truncated
/// toward zero (Go's float to int conversion); NaN counts as 0 and out-of-range values saturate.
pub fn milli_quantity_from_f64(value: f64) -> Quantity {
    milli_quantity(f64_to_milli(value))
}

/// `int64(value * 1000)` with Rust's saturating cast standing in for Go's undefined overflow.
pub fn f64_to_milli(value: f64) -> i64 {
    (value * 1000.0) as i64
}

/// upstream's `quantityFromFloat64`: `resource.MustParse(fmt.Sprintf("%.3f", value))`, with NaN, ±Inf and
/// negative values reported as `"0"` (they would otherwise make the HPA misbehave).
pub fn metric_quantity(value: f64) -> Quantity {
    if !value.is_finite() || value < 0.0 {
        return Quantity("0".to_owned());
    }
    let text = format!("{value:.3}");
    let (int_part, frac_part) = text.split_once('.').unwrap_or((&text, ""));
    let int_part = int_part.trim_start_matches('0');
    let int_part = if int_part.is_empty() { "0" } else { int_part };
    let shifted = format!("{int_part}{frac_part}");
    // ParseQuantity keeps the input string verbatim when it fits an int64 (at most 18 digits), its scale
    // is a multiple of three and it neither ends in "000" nor starts with '0'.
    let fits_int64 = int_part.len() + frac_part.len() <= 18;
    if fits_int64 && !shifted.ends_with("000") && !shifted.starts_with('0') {
        return Quantity(text);
    }
    let exponent = -i32::try_from(frac_part.len()).unwrap_or(0);
    Quantity(canonical_decimal(false, &shifted, exponent))
}

/// The canonical DecimalSI form of `digits × 10^exponent`: trailing zeros folded into the exponent, the
/// exponent lowered to a multiple of three, then the SI suffix for it.
fn canonical_decimal(negative: bool, digits: &str, exponent: i32) -> String {
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return "0".to_owned();
    }
    let significant = digits.trim_end_matches('0');
    let mut exponent = exponent + (digits.len() - significant.len()) as i32;
    let mut mantissa = significant.to_owned();
    match exponent.rem_euclid(3) {
        1 => {
            mantissa.push('0');
            exponent -= 1;
        }
        2 => {
            mantissa.push_str("00");
            exponent -= 2;
        }
        _ => {}
    }
    let sign = if negative { "-" } else { "" };
    match DECIMAL_SUFFIXES.iter().find(|(e, _)| *e == exponent) {
        Some((_, suffix)) => format!("{sign}{mantissa}{suffix}"),
        // Go finds no suffix beyond E (10^18) and would print a wrong number; the exponent form keeps the
        // value right for these absurdly large targets.
        None => format!("{sign}{mantissa}e{exponent}"),
    }
}

/// The numeric value of a quantity string (decimal or binary SI suffix, or an `e<n>` exponent). Used to
/// compare quantities semantically, as `equality.Semantic` does, so "0.5" and "500m" count as equal.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let text = text.trim();
    let number_end = text
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || ((c == '-' || c == '+') && i == 0)))
        .map_or(text.len(), |(i, _)| i);
    let (number, suffix) = text.split_at(number_end);
    let mantissa: f64 = number.parse().ok()?;
    let scale = if let Some((power, _)) = DECIMAL_SUFFIXES.iter().find(|(_, s)| *s == suffix) {
        10f64.powi(*power)
    } else if let Some((_, power)) = BINARY_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        2f64.powi(*power)
    } else if let Some(exp) = suffix.strip_prefix(['e', 'E']) {
        10f64.powi(exp.parse().ok()?)
    } else {
        return None;
    };
    Some(mantissa * scale)
}

/// Semantic equality of two quantity strings: equal text, or the same value within float precision.
pub fn quantities_equal(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (parse_quantity(a), parse_quantity(b)) {
        (Some(x), Some(y)) => x == y || (x - y).abs() <= f64::EPSILON * 16.0 * x.abs().max(y.abs()),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_quantity_matches_go_parse_of_percent_3f() {
        let cases: &[(f64, &str)] = &[
            (70.0, "70"),
            (0.5, "500m"),
            (1.5, "1.500"),
            (2.25, "2.250"),
            (1234.5, "1234.500"),
            (1000.0, "1k"),
            (1500.0, "1500"),
            (2_000_000.0, "2M"),
            (0.001, "1m"),
            (0.0, "0"),
            (0.0001, "0"),
            (-3.0, "0"),
            (f64::NAN, "0"),
            (f64::INFINITY, "0"),
            (100.0, "100"),
            (10.1, "10.100"),
            (0.25, "250m"),
            // 16 integer digits + 3 decimals exceed int64 parsing: the canonical form is printed.
            (1_234_567_890_123_456.0, "1234567890123456"),
        ];
        for (value, want) in cases {
            assert_eq!(metric_quantity(*value).0, *want, "value {value}");
        }
    }

    #[test]
    fn milli_quantity_is_always_canonical() {
        let cases: &[(i64, &str)] = &[
            (70_000, "70"),
            (500, "500m"),
            (1500, "1500m"),
            (1_500_000, "1500"),
            (1_000_000, "1k"),
            (0, "0"),
            (1, "1m"),
            (10, "10m"),
            (-2500, "-2500m"),
            (5_000_000_000, "5M"),
        ];
        for (milli, want) in cases {
            assert_eq!(milli_quantity(*milli).0, *want, "milli {milli}");
        }
    }

    #[test]
    fn milli_from_float_truncates_like_go() {
        assert_eq!(milli_quantity_from_f64(0.0005).0, "0");
        assert_eq!(milli_quantity_from_f64(2.9999).0, "2999m");
        assert_eq!(milli_quantity_from_f64(-1.5).0, "-1500m");
        assert_eq!(milli_quantity_from_f64(f64::NAN).0, "0");
        assert_eq!(f64_to_milli(f64::INFINITY), i64::MAX);
    }

    #[test]
    fn parse_and_compare_quantities() {
        let cases: &[(&str, Option<f64>)] = &[
            ("70", Some(70.0)),
            ("500m", Some(0.5)),
            ("1.500", Some(1.5)),
            ("1k", Some(1000.0)),
            ("1Ki", Some(1024.0)),
            ("2Gi", Some(2.0 * 1024.0 * 1024.0 * 1024.0)),
            ("1e3", Some(1000.0)),
            ("1E", Some(1e18)),
            ("-2", Some(-2.0)),
            ("abc", None),
            ("1x", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_quantity(text), *want, "{text}");
        }
        assert!(quantities_equal("0.5", "500m"));
        assert!(quantities_equal("1.500", "1500m"));
        assert!(quantities_equal("1Ki", "1024"));
        assert!(!quantities_equal("70", "71"));
        assert!(!quantities_equal("x", "y"));
    }
}
