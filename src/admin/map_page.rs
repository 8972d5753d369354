//! The traffic map page: `/` (also `/map`), its script `/map.js` and the data
//! it polls, `/map.json?fail=REGION,...`. Plain HTML, SVG and JS embedded in
//! the binary: nothing is fetched from anywhere else, so it works on a host
//! with no internet. Readable without the token like `/status`; the page's
//! drain buttons send the token the operator types in, as the bearer header
//! of the ordinary mutation API (never in a URL or a cookie).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::map_view::{self, ViewError, MAX_WHATIF};
use super::server::{ApiError, ApiResult};
use super::AdminCtx;

const PAGE: &str = include_str!("map_page.html");
const SCRIPT: &str = include_str!("map_page.js");

/// Only this origin's script and data; inline styles (the page's own CSS).
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

pub(super) async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /map.json?fail=a,b&drain=c`: the regions now and the map with those
/// regions failed (a drain is a failure to the answer path). The parameters
/// may also repeat (`fail=a&fail=b`).
pub(super) async fn data(
    State(ctx): State<Arc<AdminCtx>>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult {
    let Query(pairs) = q.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let mut whatif = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "fail" | "drain" => {
                whatif.extend(value.split(',').map(str::trim).filter(|r| !r.is_empty()).map(String::from))
            }
            other => {
                return Err(ApiError(StatusCode::BAD_REQUEST, format!("unknown parameter {other:?} (fail=, drain=)")))
            }
        }
    }
    if whatif.len() > MAX_WHATIF {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("more than {MAX_WHATIF} what-if regions")));
    }
    // It may wait a moment for a map: off the async workers.
    let doc = tokio::task::spawn_blocking(move || map_view::document(&ctx, &whatif))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("the map computation failed: {e}")))?;
    match doc {
        Ok(v) => Ok(Json(v)),
        Err(ViewError::BadRequest(e)) => Err(ApiError(StatusCode::BAD_REQUEST, e)),
        Err(ViewError::Unavailable(e)) => Err(ApiError(StatusCode::SERVICE_UNAVAILABLE, e)),
    }
}
