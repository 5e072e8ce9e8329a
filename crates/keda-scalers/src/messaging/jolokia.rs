//! What `activemq` and `artemis-queue` share: both read one MBean attribute through the broker's Jolokia
//! agent, whose answer carries its own status next to the HTTP one.

/// The value of a Jolokia read: HTTP 200, `status` 200 and an integer `value`. Upstream's JSON decoding
/// would read a missing `value` as 0; here it is an error (never a silent 0).
pub fn jolokia_value(http_status: u16, body: &[u8]) -> Result<i64, String> {
    let json: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("HTTP {http_status}: the answer is not JSON ({e})"))?;
    let status = json.get("status").and_then(serde_json::Value::as_i64);
    if http_status != 200 || status != Some(200) {
        return Err(format!(
            "management endpoint response error code : {http_status} {}",
            status.unwrap_or(0)
        ));
    }
    json.get("value")
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| "the answer has no integer value".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jolokia_answers() {
        assert_eq!(jolokia_value(200, br#"{"value":3,"status":200}"#), Ok(3));
        assert!(jolokia_value(200, br#"{"status":404,"error":"x"}"#).is_err());
        assert!(jolokia_value(401, b"<html></html>").is_err());
        assert!(jolokia_value(200, br#"{"status":200}"#).is_err());
        assert!(jolokia_value(200, br#"{"value":"3","status":200}"#).is_err());
        assert!(jolokia_value(200, b"").is_err());
    }
}
