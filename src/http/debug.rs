//! Debugging endpoints, served only with `--debug-endpoints`:
//! - `GET /debug/rooms`: JSON array of every running room's snapshot (`RoomCommand::Describe`);
//! - `GET /debug/rooms/<id>/pipeline.dot`: the room pipeline's graph in Graphviz dot (the id
//!   as it appears in the topic, not percent-decoded).

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::AppState;
use crate::room::{RoomCommand, RoomHandle, RoomId};

/// How long a room may take to answer a debug query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// The debug routes; they reject with "not found" when debug endpoints are off.
pub fn routes(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let enabled = state.config.debug_endpoints;
    let gate = warp::any().and_then(move || async move {
        if enabled {
            Ok(())
        } else {
            Err(warp::reject::not_found())
        }
    });
    let with_state = warp::any().map(move || state.clone());
    let rooms = warp::path!("debug" / "rooms")
        .and(warp::get())
        .and(with_state.clone())
        .then(list_rooms);
    let dot = warp::path!("debug" / "rooms" / String / "pipeline.dot")
        .and(warp::get())
        .and(with_state)
        .then(pipeline_dot);
    gate.untuple_one().and(rooms.or(dot))
}

async fn query<T>(
    room: &RoomHandle,
    make: impl FnOnce(oneshot::Sender<T>) -> RoomCommand,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    if !room.send(make(tx)).await {
        return None;
    }
    tokio::time::timeout(QUERY_TIMEOUT, rx).await.ok()?.ok()
}

async fn list_rooms(state: AppState) -> warp::reply::Response {
    let mut rooms = Vec::new();
    for id in state.rooms.ids() {
        let Some(handle) = state.rooms.get(&id) else {
            continue;
        };
        let snapshot = query(&handle, |reply| RoomCommand::Describe { reply })
            .await
            .unwrap_or(Value::Null);
        rooms.push(json!({"id": id.0, "state": snapshot}));
    }
    warp::reply::json(&rooms).into_response()
}

async fn pipeline_dot(id: String, state: AppState) -> warp::reply::Response {
    let not_found = |what: &str| {
        warp::reply::with_status(what.to_owned(), StatusCode::NOT_FOUND).into_response()
    };
    let Some(handle) = state.rooms.get(&RoomId(id)) else {
        return not_found("no such room");
    };
    match query(&handle, |reply| RoomCommand::Dot { reply })
        .await
        .flatten()
    {
        Some(dot) => {
            warp::reply::with_header(dot, "content-type", "text/vnd.graphviz").into_response()
        }
        None => not_found("room has no pipeline"),
    }
}
