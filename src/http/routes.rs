//! The route table of the server.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /socket/websocket[?vsn=2.0.0]` | Phoenix socket (other `vsn` → 400; `Origin` not allowed → 403) |
//! | `GET /health` | 200 `ok` while the process serves HTTP (liveness) |
//! | `GET /ready` | 200 `{"ready":true,"missing":[]}` when every GStreamer element a room needs is found and the embedded TURN server is bound; 503 with the missing ones in `missing` otherwise (readiness) |
//! | `GET /metrics` | Prometheus text format (see [`crate::metrics`]); on `--metrics-listen` instead when that is set ([`metrics_routes`]) |
//! | `GET /` | `index.html` of the web client (503 when it is not built) |
//! | `GET /room/<id>` | `room.html` (the client reads the room id from the URL) |
//! | `GET /assets/…` | files under `web_dir/assets` (no path traversal) |
//! | `GET /cluster` | the live nodes and their rooms (with `--redis-url`; 404 otherwise) |
//! | `GET /debug/rooms`, `GET /debug/rooms/<id>`, `GET /debug/rooms/<id>/pipeline.{dot,svg}`, `POST/DELETE /debug/rooms/<id>/tracks/<track>/tap` | with `--debug-endpoints` only |
//! | `POST/GET/DELETE /rooms/<id>/recordings[/<rec>]` | with `--debug-endpoints` or `--recording-api` |
//! | a room's `/debug/rooms/<id>…` or `/rooms/<id>/recordings…` on a node that does not own it | 307 to the owner node (cluster) |
//! | anything else | 404 |

use std::convert::Infallible;
use std::sync::Arc;

use serde_json::json;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::{cluster, debug, recordings, web, ws, AppState};
use crate::metrics::Scraper;

/// GStreamer elements a room needs: `webrtcbin` and the elements it builds its transports and
/// RTP session from (ICE, DTLS-SRTP, rtpbin), and Lamina's own, registered at start.
pub const REQUIRED_ELEMENTS: &[&str] = &[
    "webrtcbin",
    "nicesrc",
    "nicesink",
    "dtlssrtpenc",
    "dtlssrtpdec",
    "srtpenc",
    "srtpdec",
    "rtpbin",
    "rtpfunnel",
    "queue",
    "fakesink",
    "identity",
    "laminaforwarder",
    "laminarepair",
    "laminartx",
    "laminavad",
];

/// All routes of the server.
pub fn routes(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let health = warp::path("health")
        .and(warp::path::end())
        .and(warp::get())
        .map(|| "ok");
    let ready_state = state.clone();
    let ready = warp::path("ready")
        .and(warp::path::end())
        .and(warp::get())
        .map(move || {
            let missing = missing_for_readiness(&ready_state);
            let status = if missing.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            let body = json!({"ready": missing.is_empty(), "missing": missing});
            warp::reply::with_status(warp::reply::json(&body), status)
        });
    // With `--metrics-listen`, `/metrics` is served there only.
    let metrics_here = state.config.metrics_listen.is_none();
    let metrics = warp::any()
        .and_then(move || async move {
            if metrics_here {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
        .and(metrics_route(state.metrics.clone()));
    health
        .or(ready)
        .or(metrics)
        .or(ws::route(state.clone()))
        .or(web::routes(&state.config.web_dir))
        .or(cluster::routes(state.clone()))
        .or(debug::routes(state.clone()))
        .or(recordings::routes(state.clone()))
        .recover(recover)
}

/// The routes of the `--metrics-listen` address: `GET /metrics` only.
pub fn metrics_routes(
    scraper: Arc<Scraper>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    metrics_route(scraper).recover(recover)
}

/// `GET /metrics`: the Prometheus text exposition.
fn metrics_route(
    scraper: Arc<Scraper>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .then(move || {
            let scraper = scraper.clone();
            async move {
                warp::reply::with_header(
                    scraper.render().await,
                    "content-type",
                    crate::metrics::CONTENT_TYPE,
                )
            }
        })
}

/// What keeps the server from serving rooms: each missing GStreamer element as `element
/// <name>`, and `turn server` when the embedded TURN server is not bound (not checked with
/// `--external-turn`).
fn missing_for_readiness(state: &AppState) -> Vec<String> {
    let mut missing: Vec<String> = missing_elements()
        .into_iter()
        .map(|name| format!("element {name}"))
        .collect();
    let turn_bound = state
        .turn
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some();
    if state.config.external_turn.is_none() && !turn_bound {
        missing.push("turn server".to_owned());
    }
    missing
}

/// The [`REQUIRED_ELEMENTS`] GStreamer does not find.
pub fn missing_elements() -> Vec<&'static str> {
    REQUIRED_ELEMENTS
        .iter()
        .copied()
        .filter(|name| gst::ElementFactory::find(name).is_none())
        .collect()
}

/// Maps rejections to plain-text error responses.
async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    let (status, text) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "not found".to_owned())
    } else if let Some(e) = rejection.find::<ws::BadRequest>() {
        (StatusCode::BAD_REQUEST, e.to_string())
    } else if let Some(e) = rejection.find::<ws::ForbiddenOrigin>() {
        (StatusCode::FORBIDDEN, e.to_string())
    } else if let Some(e) = rejection.find::<warp::ws::MissingConnectionUpgrade>() {
        (StatusCode::BAD_REQUEST, e.to_string())
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed".to_owned(),
        )
    } else {
        tracing::debug!(?rejection, "request rejected");
        (StatusCode::BAD_REQUEST, "bad request".to_owned())
    };
    Ok(warp::reply::with_status(text, status).into_response())
}
