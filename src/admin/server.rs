//! The admin API's routes and handlers.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::status::{override_json, scope_json};
use super::BODY_LIMIT;
use crate::health::overrides::MAX_OVERRIDE_FOR;
use crate::health::{Monitor, Override, OverrideError, OverrideKind, Scope};
use crate::metrics::Metrics;
use crate::server::Published;

/// What the handlers work on.
pub struct AdminCtx {
    pub monitor: Arc<Monitor>,
    pub shared: Arc<Published>,
    pub metrics: Arc<Metrics>,
    /// The bearer token mutations must carry.
    pub token: String,
    /// When set, override changes go through etcd to every node.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The traffic map page's population and computed maps.
    pub maps: Arc<super::map_view::MapCache>,
}

/// Serve the API on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, ctx: Arc<AdminCtx>) -> std::io::Result<()> {
    axum::serve(listener, router(ctx)).await
}

pub fn router(ctx: Arc<AdminCtx>) -> Router {
    let mutations = Router::new()
        .route("/regions/{region}/override", delete(clear_region))
        .route("/regions/{region}/{action}", post(set_region))
        .route("/regions/{region}/endpoints/{addr}/override", delete(clear_endpoint))
        .route("/regions/{region}/endpoints/{addr}/{action}", post(set_endpoint))
        .route("/load/{target}", post(report_load))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&ctx), guard));
    Router::new()
        .route("/", get(super::map_page::page))
        .route("/map", get(super::map_page::page))
        .route("/map.js", get(super::map_page::script))
        .route("/map.json", get(super::map_page::data))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .merge(mutations)
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such API endpoint (see docs/health.md)".into()) })
        .with_state(ctx)
}

/// A JSON error: `{"error": "..."}`.
pub(super) struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

pub(super) type ApiResult = Result<Json<serde_json::Value>, ApiError>;

/// Mutations: body size first (no body is read past the limit), then the token.
async fn guard(State(ctx): State<Arc<AdminCtx>>, req: Request, next: Next) -> Response {
    let too_large =
        || ApiError(StatusCode::PAYLOAD_TOO_LARGE, format!("request body over {BODY_LIMIT} bytes")).into_response();
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return too_large();
    }
    if !authorized(req.headers(), &ctx.token) {
        let mut resp = ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (Authorization: Bearer <contents of the admin token file>)".into(),
        )
        .into_response();
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        return resp;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return too_large();
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let Some((scheme, given)) = value.trim().split_once(' ') else { return false };
    scheme.eq_ignore_ascii_case("bearer") && super::token::equal(given.trim().as_bytes(), token.as_bytes())
}

async fn status(State(ctx): State<Arc<AdminCtx>>) -> Json<serde_json::Value> {
    Json(super::status::build(&ctx, SystemTime::now()))
}

/// `/metrics` in OpenMetrics or Prometheus text 0.0.4, as `Accept` prefers.
async fn metrics(State(ctx): State<Arc<AdminCtx>>, headers: HeaderMap) -> Response {
    let now = SystemTime::now();
    let overrides = ctx.monitor.overrides().iter().filter(|o| !o.expired(now)).count();
    {
        let st = ctx.shared.load();
        let mut seen: Vec<&str> = Vec::new();
        for r in st.zones.zones.iter().flat_map(|z| &z.regions) {
            if !seen.contains(&r.name.as_str()) {
                seen.push(&r.name);
            }
        }
        ctx.metrics.set_health(overrides, seen.iter().map(|n| (*n, st.health.is_up(n))));
    }
    let accept = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    let format = crate::metrics::Format::from_accept((!accept.is_empty()).then_some(accept.as_str()));
    if let Some(c) = &ctx.cluster {
        ctx.metrics.set_cluster(c.connected(), c.live_nodes());
    }
    let text = ctx.metrics.encode_as(format);
    ([(header::CONTENT_TYPE, format.content_type())], text).into_response()
}

#[derive(Debug, Deserialize)]
struct LoadParam {
    value: Option<String>,
}

/// `POST /load/{region or endpoint address}?value=V`: a load report.
async fn report_load(
    State(ctx): State<Arc<AdminCtx>>,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<LoadParam>, QueryRejection>,
) -> ApiResult {
    let Path(target) = path.map_err(bad_path)?;
    let Query(q) = q.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let text = q.value.ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "value= is missing".into()))?;
    let value = text.trim().parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| {
        ApiError(StatusCode::BAD_REQUEST, format!("value={text:?} is not a load figure of 0 or more"))
    })?;
    let (region, addr) = match target.parse::<IpAddr>() {
        Ok(ip) => {
            let st = ctx.shared.load();
            let region = st.zones.zones.iter().flat_map(|z| &z.regions).find(|r| r.addresses.contains(&ip));
            let region =
                region.ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no region answers the address {ip}")))?;
            (region.name.clone(), Some(ip))
        }
        Err(_) => {
            scope(&ctx, &target, None)?;
            (target.clone(), None)
        }
    };
    match &ctx.cluster {
        // Through etcd, so every node sheds and balances on the same figure.
        Some(c) => c.report_load(&region, addr, value).await.map_err(cluster_error)?,
        None => ctx.monitor.report_load(&region, addr, value),
    }
    Ok(Json(json!({ "ok": true, "region": region, "endpoint": addr.map(|a| a.to_string()), "load": value })))
}

#[derive(Debug, Deserialize)]
struct ForParam {
    /// How long the override lasts ("30m", "2s"); absent: until cleared.
    #[serde(rename = "for")]
    for_: Option<String>,
}

/// What a `POST .../{change}` path asks for.
enum OverrideChange {
    Set(OverrideKind),
    Clear,
}

fn override_change(name: &str) -> Result<OverrideChange, ApiError> {
    match name {
        "drain" => Ok(OverrideChange::Set(OverrideKind::Drain)),
        "force-up" => Ok(OverrideChange::Set(OverrideKind::ForceUp)),
        "force-down" => Ok(OverrideChange::Set(OverrideKind::ForceDown)),
        "undrain" => Ok(OverrideChange::Clear),
        other => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("unknown action {other:?} (drain, force-up, force-down, undrain; DELETE .../override clears)"),
        )),
    }
}

fn duration(q: Result<Query<ForParam>, QueryRejection>) -> Result<Option<Duration>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let Some(text) = q.for_ else { return Ok(None) };
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        ApiError(StatusCode::BAD_REQUEST, format!("for={text:?} is not a duration such as 30m or 90s: {e}"))
    })?;
    if d.is_zero() {
        return Err(ApiError(StatusCode::BAD_REQUEST, "for= must be more than zero".into()));
    }
    if d > MAX_OVERRIDE_FOR {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!(
                "for={text:?} is longer than an override may last ({}); clear it by hand instead of setting no end",
                humantime::format_duration(MAX_OVERRIDE_FOR)
            ),
        ));
    }
    Ok(Some(d))
}

fn bad_path(e: PathRejection) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, e.body_text())
}

/// The scope named by the path, checked against the current zones (404 when unknown).
fn scope(ctx: &AdminCtx, region: &str, addr: Option<&str>) -> Result<Scope, ApiError> {
    let st = ctx.shared.load();
    let Some(r) = st.zones.zones.iter().flat_map(|z| &z.regions).find(|r| r.name == region) else {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("unknown region {region:?}")));
    };
    let Some(addr) = addr else { return Ok(Scope::Region(region.to_string())) };
    let ip: IpAddr =
        addr.parse().map_err(|_| ApiError(StatusCode::BAD_REQUEST, format!("{addr:?} is not an IP address")))?;
    if !r.endpoints.iter().any(|e| e.addr == ip) {
        let known: Vec<String> = r.endpoints.iter().map(|e| e.addr.to_string()).collect();
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("region {region} has no endpoint {ip} (its addresses: {})", known.join(", ")),
        ));
    }
    Ok(Scope::Endpoint(region.to_string(), ip))
}

async fn apply(ctx: &AdminCtx, scope: Scope, change: OverrideChange, for_: Option<Duration>) -> ApiResult {
    match change {
        OverrideChange::Set(kind) => {
            let o = match &ctx.cluster {
                Some(c) => {
                    let o = Override::new(scope, kind, for_, SystemTime::now()).map_err(override_error)?;
                    c.set_override(&o).await.map_err(cluster_error)?;
                    o
                }
                None => ctx.monitor.set_override(scope, kind, for_).map_err(override_error)?,
            };
            Ok(Json(json!({ "ok": true, "override": override_json(&o) })))
        }
        OverrideChange::Clear => clear(ctx, scope).await,
    }
}

async fn clear(ctx: &AdminCtx, scope: Scope) -> ApiResult {
    let cleared = match &ctx.cluster {
        Some(c) => c.clear_override(&scope).await.map_err(cluster_error)?,
        None => ctx.monitor.clear_override(&scope).map_err(override_error)?,
    };
    Ok(Json(json!({ "ok": true, "cleared": cleared, "scope": scope_json(&scope) })))
}

/// etcd did not take the change: nothing changed anywhere (503).
fn cluster_error(e: crate::cluster::ClusterError) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

/// A refused change: the caller's mistake (400) or a state file that cannot
/// be written (503: nothing changed, the operator must fix the disk).
fn override_error(e: OverrideError) -> ApiError {
    let code = match e {
        OverrideError::TooLong(_) => StatusCode::BAD_REQUEST,
        OverrideError::Persist { .. } => StatusCode::SERVICE_UNAVAILABLE,
    };
    ApiError(code, e.to_string())
}

async fn set_region(
    State(ctx): State<Arc<AdminCtx>>,
    path: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<ForParam>, QueryRejection>,
) -> ApiResult {
    let Path((region, name)) = path.map_err(bad_path)?;
    let change = override_change(&name)?;
    let for_ = duration(q)?;
    let scope = scope(&ctx, &region, None)?;
    apply(&ctx, scope, change, for_).await
}

async fn clear_region(State(ctx): State<Arc<AdminCtx>>, path: Result<Path<String>, PathRejection>) -> ApiResult {
    let Path(region) = path.map_err(bad_path)?;
    let scope = scope(&ctx, &region, None)?;
    clear(&ctx, scope).await
}

async fn set_endpoint(
    State(ctx): State<Arc<AdminCtx>>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    q: Result<Query<ForParam>, QueryRejection>,
) -> ApiResult {
    let Path((region, addr, name)) = path.map_err(bad_path)?;
    let change = override_change(&name)?;
    let for_ = duration(q)?;
    let scope = scope(&ctx, &region, Some(&addr))?;
    apply(&ctx, scope, change, for_).await
}

async fn clear_endpoint(
    State(ctx): State<Arc<AdminCtx>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let Path((region, addr)) = path.map_err(bad_path)?;
    let scope = scope(&ctx, &region, Some(&addr))?;
    clear(&ctx, scope).await
}
