//! URLs as they may be logged: providers put API keys in the query (`?api-key=…`), in the path
//! (`/v2/<key>`, `/<token>/`) or in the user info, and logs travel further than config files.
//!
//! [`Redacted`] shows a URL with every query value, the password (or a user name without one) and every
//! path segment that looks like a key (16+ characters of letters, digits, `-` or `_`, at least one digit)
//! replaced by `***`. What stays — scheme, host, port, short path segments, query names — is what an
//! operator needs to tell which endpoint a message is about.

use std::fmt;

/// `Display`s a URL with its secrets replaced by `***` (see the module doc).
#[derive(Debug, Clone, Copy)]
pub struct Redacted<'a>(pub &'a str);

const MASK: &str = "***";

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(self.0))
    }
}

/// The URL with its secrets replaced; text that is not a URL is replaced whole (it may be a key).
pub fn redact(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        return "(not a URL)".to_owned();
    };
    if url.password().is_some() {
        let _ = url.set_password(Some(MASK));
    } else if !url.username().is_empty() {
        let _ = url.set_username(MASK);
    }
    if url.query().is_some() {
        let names: Vec<String> = url
            .query_pairs()
            .map(|(name, _)| name.into_owned())
            .collect();
        let query = names
            .iter()
            .map(|name| format!("{name}={MASK}"))
            .collect::<Vec<_>>()
            .join("&");
        url.set_query(Some(&query));
    }
    if !url.cannot_be_a_base() {
        let path: Vec<String> = url
            .path()
            .split('/')
            .map(|segment| {
                if looks_like_a_key(segment) {
                    MASK.to_owned()
                } else {
                    segment.to_owned()
                }
            })
            .collect();
        url.set_path(&path.join("/"));
    }
    url.to_string()
}

fn looks_like_a_key(segment: &str) -> bool {
    segment.len() >= 16
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && segment.chars().any(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_keys_are_masked_wherever_they_sit() {
        let cases = [
            (
                "https://mainnet.helius-rpc.com/?api-key=0b1c2d3e-aaaa-bbbb-cccc-1234567890ab",
                "https://mainnet.helius-rpc.com/?api-key=***",
            ),
            (
                "wss://example.solana-mainnet.quiknode.pro/2f4e6a8c0b1d3f5e7a9c/",
                "wss://example.solana-mainnet.quiknode.pro/***/",
            ),
            (
                "https://solana-mainnet.g.alchemy.com/v2/AbCdEf0123456789xyz",
                "https://solana-mainnet.g.alchemy.com/v2/***",
            ),
            (
                "rediss://default:hunter2@redis.internal:6380/0",
                "rediss://default:***@redis.internal:6380/0",
            ),
            (
                "https://sk_live_key@rpc.example.com/",
                "https://***@rpc.example.com/",
            ),
            ("ws://127.0.0.1:8900/ws", "ws://127.0.0.1:8900/ws"),
            (
                "https://api.mainnet-beta.solana.com",
                "https://api.mainnet-beta.solana.com/",
            ),
        ];
        for (url, shown) in cases {
            assert_eq!(Redacted(url).to_string(), shown, "{url}");
        }
        assert_eq!(redact("0b1c2d3e-secret"), "(not a URL)");
    }
}
