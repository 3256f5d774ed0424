//! The built web client: `index.html`, `room.html` and `assets/` under `config.web_dir`.

use std::path::Path;

use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

/// Text of the 503 answer when the web client has not been built.
pub const NOT_BUILT: &str = "web client not built: run scripts/build-web.sh";

/// `/`, `/room/<id>` and `/assets/…`.
pub fn routes(web_dir: &Path) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let index = warp::path::end()
        .and(warp::get())
        .and(page(web_dir, "index.html"));
    let room = warp::path!("room" / String)
        .and(warp::get())
        .and(page(web_dir, "room.html"))
        .map(|_id: String, reply| reply);
    let assets = warp::path("assets")
        .and(warp::get())
        .and(warp::fs::dir(web_dir.join("assets")));
    index.or(room).or(assets)
}

/// The file `name` of the web client, or 503 with [`NOT_BUILT`] when it is missing.
fn page(
    web_dir: &Path,
    name: &str,
) -> impl Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible> + Clone {
    let file = warp::fs::file(web_dir.join(name)).map(|f: warp::fs::File| f.into_response());
    let missing = warp::any().map(|| {
        warp::reply::with_status(NOT_BUILT, StatusCode::SERVICE_UNAVAILABLE).into_response()
    });
    file.or(missing).unify()
}
