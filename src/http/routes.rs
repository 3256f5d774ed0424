//! The route table of the server.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /socket/websocket[?vsn=2.0.0]` | Phoenix socket (other `vsn` → 400; `Origin` not allowed → 403) |
//! | `GET /health` | 200 `ok` |
//! | `GET /metrics` | Prometheus text format (see [`crate::metrics`]) |
//! | `GET /` | `index.html` of the web client (503 when it is not built) |
//! | `GET /room/<id>` | `room.html` (the client reads the room id from the URL) |
//! | `GET /assets/…` | files under `web_dir/assets` (no path traversal) |
//! | `GET /debug/rooms`, `GET /debug/rooms/<id>/pipeline.{dot,svg}`, `POST/DELETE /debug/rooms/<id>/tracks/<track>/tap` | with `--debug-endpoints` only |
//! | `POST/GET/DELETE /rooms/<id>/recordings[/<rec>]` | with `--debug-endpoints` or `--recording-api` |
//! | anything else | 404 |

use std::convert::Infallible;

use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::{debug, recordings, web, ws, AppState};

/// All routes of the server.
pub fn routes(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let health = warp::path("health")
        .and(warp::path::end())
        .and(warp::get())
        .map(|| "ok");
    let scraper = state.metrics.clone();
    let metrics = warp::path("metrics")
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
        });
    health
        .or(metrics)
        .or(ws::route(state.clone()))
        .or(web::routes(&state.config.web_dir))
        .or(debug::routes(state.clone()))
        .or(recordings::routes(state.clone()))
        .recover(recover)
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
