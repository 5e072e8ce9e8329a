//! Kubernetes quantities (`500m`, `1.5k`, `512Mi`, `1e3`) as scalers accept them.

/// A signed decimal number with an optional SI, binary or exponent suffix.
pub fn is_quantity(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(digits_end);
    let valid_number =
        number.matches('.').count() <= 1 && number.chars().any(|c| c.is_ascii_digit());
    let valid_suffix = match suffix {
        "" | "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => true,
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => true,
        s if s.starts_with(['e', 'E']) => {
            let exp = s[1..].strip_prefix(['+', '-']).unwrap_or(&s[1..]);
            !exp.is_empty() && exp.chars().all(|c| c.is_ascii_digit())
        }
        _ => false,
    };
    valid_number && valid_suffix
}

/// The value of a Kubernetes quantity string (`1.5k`, `500m`, `2Gi`, `1e3`).
pub fn value(s: &str) -> Option<f64> {
    if !is_quantity(s) {
        return None;
    }
    let split = s
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => return None,
    };
    num.parse::<f64>().ok().map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_and_values() {
        for q in ["1", "500m", "0.5", "512Mi", "1e3", "+1.5Gi", "1E-2", ".5"] {
            assert!(is_quantity(q), "{q}");
        }
        for q in ["", ".", "Mi", "1.2.3", "5mb", "1e", "abc", "1 Mi"] {
            assert!(!is_quantity(q), "{q}");
        }
        assert_eq!(value("1.5k"), Some(1500.0));
        assert_eq!(value("2Gi"), Some(2.0 * 1024f64.powi(3)));
        assert_eq!(value("1e3"), Some(1000.0));
        assert_eq!(value("250m"), Some(0.25));
        assert_eq!(value("12 apples"), None);
    }
}
