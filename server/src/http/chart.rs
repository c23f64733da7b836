//! The live chart page: `GET /` and `GET /chart?symbol=&interval=` serve one HTML page, and
//! `GET /chart/assets/{file}` its scripts, stylesheet and the vendored TradingView lightweight-charts.
//!
//! Every file is compiled into the binary (`include_str!`/`include_bytes!` from `server/web/`), so the page
//! needs no Node, no build step and no CDN, and works offline. The page is also the reference browser
//! client of contract v1 (docs/protocol.md): read `server/web/chart-feed.js` for the WebSocket side.
//!
//! Caching: the page and its own scripts change with the binary, so they are served `no-cache` with an
//! `ETag` (the browser revalidates and usually gets `304`); the vendored library's path carries its
//! version, so it is `immutable` for a year.

use axum::Router;
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const NO_CACHE: &str = "no-cache";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const JS: &str = "text/javascript; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// One file the page needs.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    cache_control: &'static str,
    body: &'static [u8],
}

const PAGE: Asset = Asset {
    name: "chart.html",
    content_type: "text/html; charset=utf-8",
    cache_control: NO_CACHE,
    body: include_bytes!("../../web/chart.html"),
};

/// One of the page's own scripts: changes with the binary, so revalidated on every load.
const fn own_script(name: &'static str, body: &'static [u8]) -> Asset {
    Asset {
        name,
        content_type: JS,
        cache_control: NO_CACHE,
        body,
    }
}

/// Everything under `/chart/assets/`. The vendored names must match `chart.html`.
const ASSETS: &[Asset] = &[
    Asset {
        name: "chart.css",
        content_type: "text/css; charset=utf-8",
        cache_control: NO_CACHE,
        body: include_bytes!("../../web/chart.css"),
    },
    own_script("chart-page.js", include_bytes!("../../web/chart-page.js")),
    own_script("chart-feed.js", include_bytes!("../../web/chart-feed.js")),
    own_script("indicators.js", include_bytes!("../../web/indicators.js")),
    own_script(
        "indicator-overlay.js",
        include_bytes!("../../web/indicator-overlay.js"),
    ),
    own_script(
        "price-format.js",
        include_bytes!("../../web/price-format.js"),
    ),
    own_script("sparkline.js", include_bytes!("../../web/sparkline.js")),
    own_script(
        "watchlist-model.js",
        include_bytes!("../../web/watchlist-model.js"),
    ),
    own_script(
        "watchlist-panel.js",
        include_bytes!("../../web/watchlist-panel.js"),
    ),
    Asset {
        name: "symbol-picker.js",
        content_type: JS,
        cache_control: NO_CACHE,
        body: include_bytes!("../../web/symbol-picker.js"),
    },
    Asset {
        name: "lightweight-charts-5.2.1.standalone.production.js",
        content_type: JS,
        cache_control: IMMUTABLE,
        body: include_bytes!("../../web/vendor/lightweight-charts.standalone.production.js"),
    },
    Asset {
        name: "lightweight-charts-5.2.1-LICENSE.txt",
        content_type: TEXT,
        cache_control: IMMUTABLE,
        body: include_bytes!("../../web/vendor/LICENSE"),
    },
    Asset {
        name: "lightweight-charts-5.2.1-NOTICE.txt",
        content_type: TEXT,
        cache_control: IMMUTABLE,
        body: include_bytes!("../../web/vendor/NOTICE"),
    },
];

/// The page's routes; they use no server state.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(page))
        .route("/chart", get(page))
        .route("/chart/assets/{file}", get(asset))
}

/// `GET /` and `GET /chart`: the page reads `symbol` and `interval` from the query string itself.
async fn page(headers: HeaderMap) -> Response {
    serve(&PAGE, &headers)
}

/// `GET /chart/assets/{file}`.
async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|asset| asset.name == file) {
        Some(asset) => serve(asset, &headers),
        None => (
            StatusCode::NOT_FOUND,
            format!("no chart asset named `{file}`"),
        )
            .into_response(),
    }
}

fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = etag(asset.body);
    let not_modified = request
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|tag| tag.trim() == etag));
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
        (CACHE_CONTROL, HeaderValue::from_static(asset.cache_control)),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (
            ETAG,
            HeaderValue::from_str(&etag).expect("hex is a valid header"),
        ),
    ];
    if not_modified {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, asset.body).into_response()
}

/// A strong validator: FNV-1a over the bytes (the files are fixed in the binary; this only has to change
/// when they do, not resist collisions on purpose).
fn etag(body: &[u8]) -> String {
    let hash = body.iter().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{hash:016x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version of the vendored lightweight-charts; part of its URL so it can be cached forever.
    const LIGHTWEIGHT_CHARTS_VERSION: &str = "5.2.1";

    #[test]
    fn vendored_library_name_carries_the_pinned_version() {
        let vendored = ASSETS
            .iter()
            .filter(|asset| asset.name.starts_with("lightweight-charts-"))
            .collect::<Vec<_>>();
        assert_eq!(vendored.len(), 3);
        for asset in vendored {
            assert!(
                asset
                    .name
                    .starts_with(&format!("lightweight-charts-{LIGHTWEIGHT_CHARTS_VERSION}")),
                "{}",
                asset.name
            );
        }
    }

    #[test]
    fn the_page_loads_only_assets_that_exist() {
        let html = std::str::from_utf8(PAGE.body).unwrap();
        let referenced: Vec<&str> = html
            .split("=\"/chart/assets/")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap())
            .collect();
        assert!(referenced.len() >= 5, "{referenced:?}");
        for name in referenced {
            assert!(
                ASSETS.iter().any(|asset| asset.name == name),
                "chart.html loads `{name}`, which is not served"
            );
        }
    }

    /// The page's modules import each other by relative path (`from "./x.js"`): every one they name is served.
    #[test]
    fn the_scripts_import_only_scripts_that_exist() {
        let scripts = ASSETS
            .iter()
            .filter(|asset| asset.cache_control == NO_CACHE);
        let mut imports = 0;
        for script in scripts.filter(|asset| asset.name.ends_with(".js")) {
            let text = std::str::from_utf8(script.body).unwrap();
            for name in text.split(" from \"./").skip(1) {
                let name = name.split('"').next().unwrap();
                imports += 1;
                assert!(
                    ASSETS.iter().any(|asset| asset.name == name),
                    "{} imports `{name}`, which is not served",
                    script.name
                );
            }
        }
        assert!(imports >= 8, "{imports} imports found");
    }

    #[test]
    fn etag_changes_with_the_bytes() {
        assert_ne!(etag(b"a"), etag(b"b"));
        assert_eq!(etag(b"a"), etag(b"a"));
    }
}
