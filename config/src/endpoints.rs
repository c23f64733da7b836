//! The endpoints kline connects to and the TLS files it reads: checked when the configuration is built
//! (at start and by `check-config`), so a scheme the build cannot speak or a CA file that does not parse
//! is refused with the key to change, not discovered by a connection that fails for ever.

use std::collections::BTreeMap;
use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};
use kline_tls::ClientTls;
use serde::Deserialize;

use super::{Config, ConfigError};

/// HTTP headers for a node (API keys): names are case-insensitive and an `_` reads as `-` (so the
/// environment can set `x-token`); values are secrets, so `Debug` shows only the names.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct HttpHeaders(BTreeMap<String, String>);

impl fmt::Debug for HttpHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl HttpHeaders {
    /// The headers, each value marked sensitive (HTTP clients then keep it out of their own logs).
    pub fn to_header_map(&self) -> Result<HeaderMap, String> {
        let mut map = HeaderMap::new();
        for (name, value) in &self.0 {
            let header = name.replace('_', "-");
            let name = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| format!("`{header}` is not an HTTP header name"))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| format!("the value of `{header}` is not a valid header value"))?;
            value.set_sensitive(true);
            map.insert(name, value);
        }
        Ok(map)
    }
}

/// Checks every endpoint's scheme, the headers, and that each TLS file given loads.
pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    let solana = &config.source.solana;
    let stream = &config.stream;
    scheme("source.solana.ws_url", &solana.ws_url, &["ws", "wss"])?;
    scheme("source.solana.rpc_url", &solana.rpc_url, &["http", "https"])?;
    scheme("stream.redis_url", &stream.redis_url, &["redis", "rediss"])?;
    if !stream.snapshot_url.is_empty() {
        scheme(
            "stream.snapshot_url",
            &stream.snapshot_url,
            &["http", "https"],
        )?;
    }
    solana
        .headers
        .to_header_map()
        .map_err(|reason| ConfigError::invalid("source.solana.headers", reason))?;
    for (key, path) in [
        ("source.solana.ca_file", &solana.ca_file),
        ("stream.redis_ca_file", &stream.redis_ca_file),
        ("stream.snapshot_ca_file", &stream.snapshot_ca_file),
    ] {
        ClientTls::with_ca_file(path)
            .config()
            .map_err(|err| ConfigError::invalid(key, err.to_string()))?;
    }
    let tls = &config.server.tls;
    if tls.enabled {
        for (key, path) in [
            ("server.tls.cert_file", &tls.cert_file),
            ("server.tls.key_file", &tls.key_file),
        ] {
            if path.as_os_str().is_empty() {
                return Err(ConfigError::invalid(
                    key,
                    "must name a PEM file while server.tls.enabled is true",
                ));
            }
        }
        kline_tls::ServerCertificate::load(&tls.cert_file, &tls.key_file)
            .map_err(|err| ConfigError::invalid("server.tls", err.to_string()))?;
    }
    Ok(())
}

/// `url` must parse and use one of `schemes`.
fn scheme(key: &str, url: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(url).map_err(|err| {
        ConfigError::invalid(
            key,
            format!("`{}` is not a URL: {err}", kline_tls::Redacted(url)),
        )
    })?;
    if schemes.contains(&parsed.scheme()) {
        return Ok(());
    }
    Err(ConfigError::invalid(
        key,
        format!(
            "the scheme `{}://` is not one this build speaks: use {}",
            parsed.scheme(),
            schemes
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConfigLayers;

    fn build(overrides: &[&str]) -> Result<Config, ConfigError> {
        ConfigLayers::new()
            .overrides(overrides.iter().copied())
            .unwrap()
            .build()
    }

    #[test]
    fn a_scheme_the_build_cannot_speak_is_refused_with_the_key_and_what_to_use() {
        let err = build(&["source.solana.ws_url=\"https://rpc.example.com\""])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("source.solana.ws_url") && err.contains("ws:// or wss://"),
            "{err}"
        );
        let err = build(&["stream.redis_url=\"unix:///tmp/redis.sock\""])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stream.redis_url") && err.contains("rediss://"),
            "{err}"
        );
        build(&[
            "source.solana.ws_url=\"wss://rpc.example.com/KEY0123456789abcdef/\"",
            "source.solana.rpc_url=\"https://rpc.example.com/?api-key=abc\"",
            "stream.redis_url=\"rediss://redis.example.com:6380/\"",
        ])
        .unwrap();
    }

    #[test]
    fn a_ca_file_that_does_not_parse_is_refused_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("ca.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        for key in [
            "source.solana.ca_file",
            "stream.redis_ca_file",
            "stream.snapshot_ca_file",
        ] {
            let setting = format!("{key}={:?}", bad.display().to_string());
            let err = build(&[&setting]).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("ca.pem"), "{err}");
        }
    }

    #[test]
    fn server_tls_needs_loadable_files() {
        let err = build(&["server.tls.enabled=true"]).unwrap_err().to_string();
        assert!(err.contains("server.tls.cert_file"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("c.pem");
        std::fs::write(&cert, "nothing").unwrap();
        let setting = |key: &str| format!("{key}={:?}", cert.display().to_string());
        let err = build(&[
            "server.tls.enabled=true",
            &setting("server.tls.cert_file"),
            &setting("server.tls.key_file"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("server.tls") && err.contains("no certificate"),
            "{err}"
        );
    }

    #[test]
    fn header_values_stay_out_of_debug_output_and_underscores_read_as_dashes() {
        let config = build(&["source.solana.headers.x_token=\"sekrit\""]).unwrap();
        assert!(!format!("{config:?}").contains("sekrit"));
        let map = config.source.solana.headers.to_header_map().unwrap();
        assert_eq!(map["x-token"], "sekrit");
        assert!(map["x-token"].is_sensitive());
        let err = build(&["source.solana.headers.bad@header=\"v\""]);
        assert!(err.is_err());
    }
}
