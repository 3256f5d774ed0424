//! `GET /cluster`, and the redirects that let the operator routes of a room (`/debug/rooms/<id>…`,
//! `/rooms/<id>/recordings…`) answer on any node of a cluster.
//!
//! - `GET /cluster`: 200 `{"node": <this node>, "nodes": [{"id", "url", "draining", "rooms",
//!   "peers", "forwarded_pps", "cpu_percent"}]}`; 503 with `error` when Redis cannot be read;
//!   404 on a single node.
//! - A room route for a room owned by another node: 307 to the same path and query on the
//!   owner's URL, with `{"error", "node", "location"}` saying so (clients that do not follow
//!   redirects see why). The routes stay gated by their own flags on this node.

use serde_json::{json, Value};
use warp::http::{header, StatusCode};
use warp::path::FullPath;
use warp::{Filter, Rejection, Reply};

use super::recordings::percent_decode;
use super::AppState;
use crate::cluster::{Cluster, NodeRecord};
use crate::room::RoomId;

/// `/cluster` and the owner redirects.
pub fn routes(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let listing_state = state.clone();
    let listing = warp::path("cluster")
        .and(warp::path::end())
        .and(warp::get())
        .then(move || cluster_listing(listing_state.clone()));
    let redirect = warp::path::full()
        .and(
            warp::query::raw()
                .map(Some)
                .or(warp::any().map(|| None))
                .unify(),
        )
        .and_then(move |path: FullPath, query: Option<String>| {
            let state = state.clone();
            async move { to_owner(&state, path.as_str(), query.as_deref()).await }
        });
    listing.or(redirect)
}

fn node_json(n: &NodeRecord) -> Value {
    json!({
        "id": n.id,
        "url": n.url,
        "draining": n.draining,
        "rooms": n.rooms,
        "peers": n.peers,
        "forwarded_pps": n.forwarded_pps,
        "cpu_percent": n.cpu_percent,
    })
}

fn cluster(state: &AppState) -> Option<&Cluster> {
    state.cluster.as_ref().and_then(|c| c.get())
}

async fn cluster_listing(state: AppState) -> warp::reply::Response {
    let Some(cluster) = cluster(&state) else {
        return warp::reply::with_status(
            warp::reply::json(
                &json!({"error": "clustering is off: this node runs without --redis-url"}),
            ),
            StatusCode::NOT_FOUND,
        )
        .into_response();
    };
    match cluster.nodes().await {
        Ok(nodes) => warp::reply::json(&json!({
            "node": cluster.node_id(),
            "draining": cluster.is_draining(),
            "nodes": nodes.iter().map(node_json).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => warp::reply::with_status(
            warp::reply::json(&json!({"node": cluster.node_id(), "error": e.to_string()})),
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .into_response(),
    }
}

/// The room id of an operator route of a room, when that route family is served here.
fn operator_room(state: &AppState, path: &str) -> Option<String> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let debug = state.config.debug_endpoints;
    let recordings = debug || state.config.recording_api;
    match parts.as_slice() {
        ["debug", "rooms", id, ..] if debug && !id.is_empty() => Some(percent_decode(id)),
        ["rooms", id, "recordings", ..] if recordings && !id.is_empty() => Some(percent_decode(id)),
        _ => None,
    }
}

/// Redirects an operator route to the room's owner node; rejects (so the local routes answer)
/// when the room is here, unknown, or this is a single node.
async fn to_owner(
    state: &AppState,
    path: &str,
    query: Option<&str>,
) -> Result<warp::reply::Response, Rejection> {
    let Some(cluster) = cluster(state) else {
        return Err(warp::reject::not_found());
    };
    let Some(room) = operator_room(state, path) else {
        return Err(warp::reject::not_found());
    };
    let owner =
        match cluster.remote_owner(&RoomId(room.clone())).await {
            Ok(Some(owner)) => owner,
            Ok(None) => return Err(warp::reject::not_found()),
            Err(e) => return Ok(warp::reply::with_status(
                warp::reply::json(
                    &json!({"error": format!("cannot tell which node runs room {room:?}: {e}")}),
                ),
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .into_response()),
        };
    let location = match query {
        Some(q) if !q.is_empty() => format!("{}{path}?{q}", owner.http_url()),
        _ => format!("{}{path}", owner.http_url()),
    };
    let body = json!({
        "error": format!("room {room:?} runs on node {:?}", owner.id),
        "node": owner.id,
        "location": location,
    });
    let mut response =
        warp::reply::with_status(warp::reply::json(&body), StatusCode::TEMPORARY_REDIRECT)
            .into_response();
    if let Ok(v) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}
