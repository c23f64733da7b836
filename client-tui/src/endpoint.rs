//! Where the server is and how to reach it: the WebSocket URL the user gave, the REST URLs next to it, and
//! whom to trust for `wss://`/`https://` (the system's CA certificates plus `--ca-file`).

use std::path::Path;
use std::sync::Arc;

use kline_tls::{ClientTls, HandshakeFailure, TlsError};
use tokio::net::TcpStream;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream, tungstenite};
use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("`{0}` is not a URL: {1}")]
    Invalid(String, url::ParseError),
    #[error("`{0}` must be a ws:// or wss:// URL")]
    Scheme(String),
    #[error("--ca-file: {0}")]
    CaFile(#[from] TlsError),
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub ws: Url,
    tls: Arc<rustls::ClientConfig>,
}

impl Endpoint {
    /// `text`: a `ws://` or `wss://` URL; `ca_file`: extra CA certificates (PEM) to trust beside the
    /// system's, for a server with a private or self-signed certificate.
    pub fn parse(text: &str, ca_file: Option<&Path>) -> Result<Endpoint, EndpointError> {
        let ws = Url::parse(text).map_err(|err| EndpointError::Invalid(text.to_owned(), err))?;
        if !matches!(ws.scheme(), "ws" | "wss") {
            return Err(EndpointError::Scheme(text.to_owned()));
        }
        let tls = ClientTls {
            ca_file: ca_file.map(Path::to_owned),
        }
        .config()?;
        Ok(Endpoint { ws, tls })
    }

    /// Opens the WebSocket (TLS for `wss://`).
    pub async fn connect(&self) -> Result<Socket, tungstenite::Error> {
        let connector = Connector::Rustls(self.tls.clone());
        let (socket, _) = tokio_tungstenite::connect_async_tls_with_config(
            self.ws.as_str(),
            None,
            false,
            Some(connector),
        )
        .await?;
        Ok(socket)
    }

    fn http(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .use_preconfigured_tls((*self.tls).clone())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("an HTTP client with a rustls config builds")
    }

    /// `GET /api/v1/symbols` on the same host.
    pub fn symbols_url(&self) -> Url {
        let mut http = self.ws.clone();
        let scheme = if self.ws.scheme() == "wss" {
            "https"
        } else {
            "http"
        };
        http.set_scheme(scheme)
            .expect("http(s) is a valid scheme for a ws URL");
        http.set_path("/api/v1/symbols");
        http.set_query(None);
        http
    }
}

/// Known symbols with their ticker, name and last price, most recent first.
pub async fn fetch_symbols(endpoint: &Endpoint) -> anyhow::Result<Vec<crate::view::SymbolEntry>> {
    let list: Vec<serde_json::Value> = async {
        endpoint
            .http()
            .get(endpoint.symbols_url())
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
    }
    .await
    .map_err(|err| anyhow::anyhow!(describe(&err)))?;
    Ok(list
        .iter()
        .filter_map(|entry| {
            // Names are sanitised again here: nothing from the server reaches the terminal unchecked.
            let text = |field: &str| entry[field].as_str().unwrap_or("");
            Some(crate::view::SymbolEntry {
                symbol: entry["symbol"].as_str()?.to_owned(),
                ticker: kline_protocol::TickerText::new(text("ticker")),
                name: kline_protocol::NameText::new(text("name")),
                last_price: entry["last_price"].as_f64().unwrap_or(f64::NAN),
            })
        })
        .collect())
}

/// An error of a connection in words: the TLS cause with what to do when there is one (a certificate the
/// system does not trust names `--ca-file`), else the error with its causes.
pub fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    if let Some(failure) = HandshakeFailure::find(err, "--ca-file") {
        return format!("TLS: {}", failure.message);
    }
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_urls_sit_next_to_the_websocket() {
        let endpoint = Endpoint::parse("ws://127.0.0.1:8080/ws", None).unwrap();
        assert_eq!(
            endpoint.symbols_url().as_str(),
            "http://127.0.0.1:8080/api/v1/symbols"
        );
        let secure = Endpoint::parse("wss://kline.example/ws?x=1", None).unwrap();
        assert_eq!(
            secure.symbols_url().as_str(),
            "https://kline.example/api/v1/symbols"
        );
        assert!(Endpoint::parse("http://host/ws", None).is_err());
        assert!(Endpoint::parse("nope", None).is_err());
    }
}
