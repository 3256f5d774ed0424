//! Debugging endpoints, served only with `--debug-endpoints` (404 otherwise):
//! - `GET /debug/rooms`: JSON array of every running room's snapshot (`RoomCommand::Describe`:
//!   peers with their `peer-<id>` bin and subscriptions, tracks with their `fwd-<track>`
//!   forwarder);
//! - `GET /debug/rooms/<id>`: one room's snapshot (404 if it does not run here; in a cluster a
//!   room on another node is redirected there, see [`super::cluster`]).
//! - `GET /debug/rooms/<id>/pipeline.dot`: the room pipeline's graph in Graphviz dot (the id
//!   as it appears in the topic, not percent-decoded);
//! - `GET /debug/rooms/<id>/pipeline.svg`: the same graph rendered by Graphviz `dot -Tsvg`
//!   (bounded by [`RENDER_TIMEOUT`]; 501 when `dot` is not installed);
//! - `POST /debug/rooms/<id>/tracks/<track>/tap?port=N`: send the track's RTP to
//!   `127.0.0.1:N` (loopback only); the answer names the caps and a `gst-launch-1.0` command
//!   that plays it. `DELETE …/tap[?port=N]` removes the tap(s).
//! - `POST /debug/rooms/<id>/fault?peer=<peer id>` or `?room=1`: injects a real GStreamer error
//!   inside that peer's bin (the peer is removed with an `error`) or into the room pipeline
//!   (the room closes) — failure-isolation tests.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::recordings::{error, percent_decode, tool_error};
use super::AppState;
use crate::room::tools::{ask, ToolOp};
use crate::room::{RoomCommand, RoomHandle, RoomId};
use lamina_pipelines::{TapInfo, TrackId};

/// How long a room may take to answer a debug query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// How long Graphviz may take to render a graph.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(10);

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
    let one = warp::path!("debug" / "rooms" / String)
        .and(warp::get())
        .and(with_state.clone())
        .then(describe_room);
    let dot = warp::path!("debug" / "rooms" / String / "pipeline.dot")
        .and(warp::get())
        .and(with_state.clone())
        .then(pipeline_dot);
    let svg = warp::path!("debug" / "rooms" / String / "pipeline.svg")
        .and(warp::get())
        .and(with_state.clone())
        .then(pipeline_svg);
    let port = warp::query::<PortQuery>();
    let tap = warp::path!("debug" / "rooms" / String / "tracks" / String / "tap")
        .and(warp::post())
        .and(port)
        .and(with_state.clone())
        .then(add_tap);
    let untap = warp::path!("debug" / "rooms" / String / "tracks" / String / "tap")
        .and(warp::delete())
        .and(port)
        .and(with_state.clone())
        .then(remove_tap);
    let fault = warp::path!("debug" / "rooms" / String / "fault")
        .and(warp::post())
        .and(warp::query::<FaultQuery>())
        .and(with_state)
        .then(inject_fault);
    gate.untuple_one()
        .and(rooms.or(one).or(dot).or(svg).or(tap).or(untap).or(fault))
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

/// `GET /debug/rooms/<id>`: one room's snapshot, as in the listing.
async fn describe_room(id: String, state: AppState) -> warp::reply::Response {
    let id = percent_decode(&id);
    let Some(handle) = state.rooms.get(&RoomId(id.clone())) else {
        return warp::reply::with_status("no such room".to_owned(), StatusCode::NOT_FOUND)
            .into_response();
    };
    let snapshot = query(&handle, |reply| RoomCommand::Describe { reply })
        .await
        .unwrap_or(Value::Null);
    warp::reply::json(&json!({"id": id, "state": snapshot})).into_response()
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

/// `?peer=<id>` or `?room=1` of the fault route.
#[derive(Debug, serde::Deserialize)]
struct FaultQuery {
    peer: Option<String>,
    room: Option<String>,
}

async fn inject_fault(id: String, q: FaultQuery, state: AppState) -> warp::reply::Response {
    let fault = match (q.peer, q.room.as_deref()) {
        (Some(peer), None) => lamina_pipelines::Fault::Peer(crate::PeerId::new(peer)),
        (None, Some("1" | "true")) => lamina_pipelines::Fault::Room,
        _ => return error(StatusCode::BAD_REQUEST, "use ?peer=<peer id> or ?room=1"),
    };
    let Some(handle) = state.rooms.get(&RoomId(id)) else {
        return error(StatusCode::NOT_FOUND, "no such room");
    };
    match query(&handle, |reply| RoomCommand::InjectFault { fault, reply }).await {
        Some(Ok(())) => warp::reply::with_status("fault injected", StatusCode::OK).into_response(),
        Some(Err(e)) => error(StatusCode::NOT_FOUND, e.to_string()),
        None => error(StatusCode::GATEWAY_TIMEOUT, "room did not answer"),
    }
}

/// `?port=N` of the tap routes.
#[derive(Debug, serde::Deserialize)]
struct PortQuery {
    port: Option<u16>,
}

async fn room_dot(id: String, state: &AppState) -> Result<String, warp::reply::Response> {
    let Some(handle) = state.rooms.get(&RoomId(id)) else {
        return Err(error(StatusCode::NOT_FOUND, "no such room"));
    };
    query(&handle, |reply| RoomCommand::Dot { reply })
        .await
        .flatten()
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "room has no pipeline"))
}

async fn pipeline_svg(id: String, state: AppState) -> warp::reply::Response {
    let dot = match room_dot(id, &state).await {
        Ok(dot) => dot,
        Err(response) => return response,
    };
    match tokio::task::spawn_blocking(move || render_svg(&dot, RENDER_TIMEOUT)).await {
        Ok(Ok(svg)) => {
            warp::reply::with_header(svg, "content-type", "image/svg+xml").into_response()
        }
        Ok(Err(RenderError::NotInstalled)) => error(
            StatusCode::NOT_IMPLEMENTED,
            "Graphviz `dot` is not installed (apt-get install graphviz); \
             GET pipeline.dot and render it elsewhere",
        ),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Why a graph could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// There is no `dot` program on the PATH.
    #[error("Graphviz dot is not installed")]
    NotInstalled,
    /// `dot` ran longer than allowed and was killed.
    #[error("dot took longer than {0:?}")]
    Timeout(Duration),
    /// `dot` failed.
    #[error("dot failed: {0}")]
    Failed(String),
}

/// Renders `dot` to SVG with Graphviz (`dot -Tsvg`), killing it after `timeout`. Blocking.
/// Input and output go through temporary files, so no pipe can fill up while waiting.
pub fn render_svg(dot: &str, timeout: Duration) -> Result<String, RenderError> {
    let failed = |e: std::io::Error| RenderError::Failed(e.to_string());
    let base = std::env::temp_dir().join(format!("lamina-graph-{}", uuid::Uuid::new_v4().simple()));
    let (input, output) = (base.with_extension("dot"), base.with_extension("svg"));
    std::fs::write(&input, dot).map_err(failed)?;
    let result = (|| {
        let mut child = match std::process::Command::new("dot")
            .arg("-Tsvg")
            .arg(&input)
            .arg("-o")
            .arg(&output)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RenderError::NotInstalled)
            }
            Err(e) => return Err(failed(e)),
        };
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match child.try_wait().map_err(failed)? {
                Some(status) if status.success() => break,
                Some(status) => return Err(RenderError::Failed(status.to_string())),
                None if std::time::Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(RenderError::Timeout(timeout));
                }
                None => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        std::fs::read_to_string(&output).map_err(failed)
    })();
    let _ = std::fs::remove_file(&input);
    let _ = std::fs::remove_file(&output);
    result
}

fn tap_json(t: &TapInfo) -> Value {
    json!({
        "track": t.track.as_str(),
        "kind": t.kind.as_str(),
        "host": lamina_pipelines::tap::TAP_HOST,
        "port": t.port,
        "caps": t.caps,
        "receive": t.receive_command(),
    })
}

async fn add_tap(
    room: String,
    track: String,
    q: PortQuery,
    state: AppState,
) -> warp::reply::Response {
    let Some(port) = q.port else {
        return error(
            StatusCode::BAD_REQUEST,
            "?port=<udp port on 127.0.0.1> is required",
        );
    };
    let Some(handle) = state.rooms.get(&RoomId(room)) else {
        return error(StatusCode::NOT_FOUND, "no such room");
    };
    let track = TrackId::new(percent_decode(&track));
    match ask(&handle, QUERY_TIMEOUT, |reply| ToolOp::AddTap {
        track,
        port,
        reply,
    })
    .await
    {
        Ok(tap) => {
            warp::reply::with_status(warp::reply::json(&tap_json(&tap)), StatusCode::CREATED)
                .into_response()
        }
        Err(e) => tool_error(e),
    }
}

async fn remove_tap(
    room: String,
    track: String,
    q: PortQuery,
    state: AppState,
) -> warp::reply::Response {
    let Some(handle) = state.rooms.get(&RoomId(room)) else {
        return error(StatusCode::NOT_FOUND, "no such room");
    };
    let track = TrackId::new(percent_decode(&track));
    match ask(&handle, QUERY_TIMEOUT, |reply| ToolOp::RemoveTap {
        track,
        port: q.port,
        reply,
    })
    .await
    {
        Ok(gone) => {
            warp::reply::json(&gone.iter().map(tap_json).collect::<Vec<_>>()).into_response()
        }
        Err(e) => tool_error(e),
    }
}
