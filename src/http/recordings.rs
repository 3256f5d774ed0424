//! The recording API, an operator API served only with `--debug-endpoints` or
//! `--recording-api` (404 otherwise):
//!
//! | route | what |
//! | --- | --- |
//! | `POST /rooms/<id>/recordings` | start; body optional: `{"track": "<track id>"}`; without it every track of the room, including tracks published later. 201 + the recording |
//! | `GET /rooms/<id>/recordings` | running and recently stopped recordings with progress |
//! | `DELETE /rooms/<id>/recordings` | stop every running recording; answers once the files are finalized |
//! | `DELETE /rooms/<id>/recordings/<rec>` | stop one |
//!
//! Files: `<--recordings-dir>/<room>-<rec>/<kind>-<track>.webm`, VP8 or Opus in WebM, not
//! decoded, all files of one recording on one time base (0 = when it started).

use std::time::Duration;

use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::AppState;
use crate::room::tools::{ask, ToolError, ToolOp};
use crate::room::RoomId;
use lamina_pipelines::recording::file_safe;
use lamina_pipelines::{RecordedFile, RecordingError, RecordingInfo, RecordingRequest, TrackId};

/// How long a start or list may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stop may take (the files are finalized before the answer, bounded at 5 s each).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest accepted request body.
const MAX_BODY: u64 = 16 * 1024;

/// The recording routes; they reject with "not found" when the API is off.
pub fn routes(state: AppState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let enabled = state.config.debug_endpoints || state.config.recording_api;
    let gate = warp::any().and_then(move || async move {
        if enabled {
            Ok(())
        } else {
            Err(warp::reject::not_found())
        }
    });
    let with_state = warp::any().map(move || state.clone());
    let start = warp::path!("rooms" / String / "recordings")
        .and(warp::post())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::bytes())
        .and(with_state.clone())
        .then(start);
    let list = warp::path!("rooms" / String / "recordings")
        .and(warp::get())
        .and(with_state.clone())
        .then(list);
    let stop_all = warp::path!("rooms" / String / "recordings")
        .and(warp::delete())
        .and(with_state.clone())
        .then(|room, state| stop(room, None, state));
    let stop_one = warp::path!("rooms" / String / "recordings" / String)
        .and(warp::delete())
        .and(with_state)
        .then(|room, rec, state| stop(room, Some(rec), state));
    gate.untuple_one()
        .and(start.or(list).or(stop_all).or(stop_one))
}

/// Plain-text error answer.
pub(crate) fn error(status: StatusCode, text: impl Into<String>) -> warp::reply::Response {
    warp::reply::with_status(text.into(), status).into_response()
}

/// HTTP status of a tool failure.
pub(crate) fn tool_error(e: ToolError) -> warp::reply::Response {
    let status = match &e {
        ToolError::Recording(RecordingError::UnknownTrack(_))
        | ToolError::Recording(RecordingError::UnknownRecording(_))
        | ToolError::Tap(lamina_pipelines::TapError::UnknownTrack(_))
        | ToolError::Tap(lamina_pipelines::TapError::UnknownTap(_)) => StatusCode::NOT_FOUND,
        ToolError::Recording(RecordingError::Duplicate(_))
        | ToolError::Tap(lamina_pipelines::TapError::Duplicate(..)) => StatusCode::CONFLICT,
        ToolError::Tap(lamina_pipelines::TapError::BadPort) => StatusCode::BAD_REQUEST,
        ToolError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
        ToolError::Closed => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

/// `%XX` sequences of a path segment decoded (track ids carry `:`, which clients may escape).
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn file_json(f: &RecordedFile) -> Value {
    let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as u64);
    json!({
        "track": f.track.as_str(),
        "kind": f.kind.as_str(),
        "codec": f.codec,
        "path": f.path.display().to_string(),
        "bytes": f.bytes,
        "frames": f.frames,
        "start_ms": ms(f.start),
        "end_ms": ms(f.end),
        "finished": f.finished,
        "error": f.error,
    })
}

/// JSON form of a recording.
pub fn recording_json(room: &str, r: &RecordingInfo) -> Value {
    json!({
        "id": r.id,
        "room": room,
        "track": r.track.as_ref().map(|t| t.as_str()),
        "running": r.running,
        "duration_ms": r.duration.as_millis() as u64,
        "bytes": r.files.iter().map(|f| f.bytes).sum::<u64>(),
        "dir": r.dir.display().to_string(),
        "files": r.files.iter().map(file_json).collect::<Vec<_>>(),
    })
}

async fn start(
    room: String,
    length: Option<u64>,
    body: warp::hyper::body::Bytes,
    state: AppState,
) -> warp::reply::Response {
    if length.unwrap_or(0) > MAX_BODY || body.len() as u64 > MAX_BODY {
        return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    }
    let track = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(o)) => match o.get("track") {
                None | Some(Value::Null) => None,
                Some(Value::String(t)) => Some(TrackId::new(t.clone())),
                Some(_) => return error(StatusCode::BAD_REQUEST, "\"track\" must be a string"),
            },
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "body must be a JSON object like {\"track\": \"<track id>\"}",
                )
            }
        }
    };
    let Some(handle) = state.rooms.get(&RoomId(room.clone())) else {
        return error(StatusCode::NOT_FOUND, "no such room");
    };
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let dir = state
        .config
        .recordings_dir
        .join(format!("{}-{id}", file_safe(&room)));
    let request = RecordingRequest { id, dir, track };
    match ask(&handle, QUERY_TIMEOUT, |reply| ToolOp::StartRecording {
        request,
        reply,
    })
    .await
    {
        Ok(info) => warp::reply::with_status(
            warp::reply::json(&recording_json(&room, &info)),
            StatusCode::CREATED,
        )
        .into_response(),
        Err(e) => tool_error(e),
    }
}

async fn list(room: String, state: AppState) -> warp::reply::Response {
    let Some(handle) = state.rooms.get(&RoomId(room.clone())) else {
        return error(StatusCode::NOT_FOUND, "no such room");
    };
    match ask(&handle, QUERY_TIMEOUT, |reply| ToolOp::ListRecordings {
        reply,
    })
    .await
    {
        Ok(all) => warp::reply::json(
            &all.iter()
                .map(|r| recording_json(&room, r))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => tool_error(e),
    }
}

async fn stop(room: String, rec: Option<String>, state: AppState) -> warp::reply::Response {
    let Some(handle) = state.rooms.get(&RoomId(room.clone())) else {
        return error(StatusCode::NOT_FOUND, "no such room");
    };
    match ask(&handle, STOP_TIMEOUT, |reply| ToolOp::StopRecording {
        id: rec,
        reply,
    })
    .await
    {
        Ok(stopped) => warp::reply::json(
            &stopped
                .iter()
                .map(|r| recording_json(&room, r))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => tool_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_of_track_ids() {
        assert_eq!(percent_decode("a%3Ab"), "a:b");
        assert_eq!(percent_decode("a:b"), "a:b");
        assert_eq!(percent_decode("50%"), "50%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
