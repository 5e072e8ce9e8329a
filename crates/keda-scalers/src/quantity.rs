//! Kubernetes quantities (`500m`, `1.5k`, `512Mi`, `1e3`) as scalers accept them: the HPA's own parser
//! (`keda_core::quantity`), without its tolerance of surrounding whitespace, so a value is read exactly
//! as written.

/// A signed decimal number with an optional SI, binary or exponent suffix.
pub fn is_quantity(s: &str) -> bool {
    value(s).is_some()
}

/// The value of a Kubernetes quantity string (`1.5k`, `500m`, `2Gi`, `1e3`).
pub fn value(s: &str) -> Option<f64> {
    if s.trim() != s {
        return None;
    }
    keda_core::quantity::parse_quantity(s)
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
