//! Bearer-token checks shared by the routes that need one (ingest, the internal listener).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

/// Whether `headers` carry `Authorization: Bearer <token>`.
pub fn presents(headers: &HeaderMap, token: &str) -> bool {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    constant_time_eq(presented.as_bytes(), token.as_bytes())
}

/// Compares without stopping at the first difference, so response time does not leak the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert!(presents(&with_auth("Bearer s3cret"), "s3cret"));
        assert!(!presents(&with_auth("Bearer s3cre"), "s3cret"));
        assert!(!presents(&with_auth("Bearer s3cret!"), "s3cret"));
        assert!(!presents(&with_auth("Basic s3cret"), "s3cret"));
        assert!(!presents(&HeaderMap::new(), "s3cret"));
    }
}
