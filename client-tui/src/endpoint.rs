//! Where the server is: the WebSocket URL the user gave, and the REST URLs next to it.

use url::Url;

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("`{0}` is not a URL: {1}")]
    Invalid(String, url::ParseError),
    #[error("`{0}` must be a ws:// or wss:// URL")]
    Scheme(String),
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub ws: Url,
}

impl Endpoint {
    pub fn parse(text: &str) -> Result<Endpoint, EndpointError> {
        let ws = Url::parse(text).map_err(|err| EndpointError::Invalid(text.to_owned(), err))?;
        if !matches!(ws.scheme(), "ws" | "wss") {
            return Err(EndpointError::Scheme(text.to_owned()));
        }
        Ok(Endpoint { ws })
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

/// Known symbols with their last price, most recent first.
pub async fn fetch_symbols(endpoint: &Endpoint) -> anyhow::Result<Vec<crate::view::SymbolEntry>> {
    let list: Vec<serde_json::Value> = reqwest::get(endpoint.symbols_url())
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(list
        .iter()
        .filter_map(|entry| {
            Some(crate::view::SymbolEntry {
                symbol: entry["symbol"].as_str()?.to_owned(),
                last_price: entry["last_price"].as_f64().unwrap_or(f64::NAN),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_urls_sit_next_to_the_websocket() {
        let endpoint = Endpoint::parse("ws://127.0.0.1:8080/ws").unwrap();
        assert_eq!(
            endpoint.symbols_url().as_str(),
            "http://127.0.0.1:8080/api/v1/symbols"
        );
        let secure = Endpoint::parse("wss://kline.example/ws?x=1").unwrap();
        assert_eq!(
            secure.symbols_url().as_str(),
            "https://kline.example/api/v1/symbols"
        );
        assert!(Endpoint::parse("http://host/ws").is_err());
        assert!(Endpoint::parse("nope").is_err());
    }
}
