//! Live pipeline graphs and room snapshots under `/debug` (`--debug-endpoints`), with two real
//! participants: the graph names each peer's bin and each track's forwarder, the SVG renders,
//! and everything is off by default.

mod support;
mod tools;

use lamina_pipelines::forwarder::element_name;
use lamina_pipelines::{bin_name, PeerId, TrackId};
use tools::{http, join, json, serial, wait_decoding};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_graph_and_snapshot_read_like_the_room() {
    let _serial = serial().await;
    let server = support::spawn_server(|c| c.debug_endpoints = true).await;
    let a = join(&server, "graph", "A", true, true).await;
    let b = join(&server, "graph", "B", true, true).await;
    wait_decoding(&a, &b.id, 2, 5).await;
    wait_decoding(&b, &a.id, 2, 5).await;

    // The snapshot lists peers (with their bins and subscriptions) and tracks (with forwarders).
    let (status, body) = http(server.addr, "GET", "/debug/rooms", None).await;
    assert_eq!(status, 200, "{body}");
    let rooms = json(&body);
    let room = rooms
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == "graph"))
        .unwrap_or_else(|| panic!("room listed: {body}"));
    let state = &room["state"];
    let peers = state["peers"].as_array().expect("peers");
    assert_eq!(peers.len(), 2, "{body}");
    for p in [&a, &b] {
        let peer = peers
            .iter()
            .find(|x| x["id"] == p.id.as_str())
            .expect("peer listed");
        assert_eq!(peer["bin"], bin_name(&PeerId::new(p.id.clone())));
        let subscribed = peer["subscriptions"]
            .as_array()
            .expect("subscriptions")
            .iter()
            .filter(|s| s["track"].is_string())
            .count();
        assert_eq!(
            subscribed, 2,
            "each peer receives the other's two tracks: {peer}"
        );
    }
    let tracks = state["tracks"].as_array().expect("tracks");
    assert_eq!(tracks.len(), 4, "{body}");

    // The dot graph names both peer bins and every forwarder.
    let (status, dot) = http(server.addr, "GET", "/debug/rooms/graph/pipeline.dot", None).await;
    assert_eq!(status, 200);
    assert!(dot.starts_with("digraph"), "{}", &dot[..dot.len().min(200)]);
    for p in [&a, &b] {
        let bin = bin_name(&PeerId::new(p.id.clone()));
        assert!(dot.contains(&bin), "dot names {bin}");
    }
    for t in tracks {
        assert_eq!(
            t["forwarder"],
            element_name(&TrackId::new(t["id"].as_str().unwrap()))
        );
        let fwd = t["forwarder"].as_str().unwrap();
        assert!(dot.contains(fwd), "dot names {fwd}");
    }

    // Rendered by Graphviz.
    let (status, svg) = http(server.addr, "GET", "/debug/rooms/graph/pipeline.svg", None).await;
    assert_eq!(status, 200, "{svg}");
    let head = svg.trim_start();
    assert!(
        head.starts_with("<svg") || head.starts_with("<?xml"),
        "{}",
        &svg[..svg.len().min(200)]
    );
    assert!(svg.contains("</svg>"));
    let (status, _) = http(server.addr, "GET", "/debug/rooms/nope/pipeline.svg", None).await;
    assert_eq!(status, 404);

    a.leave().await;
    b.leave().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_and_recording_endpoints_are_off_by_default() {
    let _serial = serial().await;
    let server = support::spawn_server(|_| {}).await;
    for (method, path) in [
        ("GET", "/debug/rooms"),
        ("GET", "/debug/rooms/x/pipeline.dot"),
        ("GET", "/debug/rooms/x/pipeline.svg"),
        ("POST", "/debug/rooms/x/tracks/t/tap?port=5004"),
        ("DELETE", "/debug/rooms/x/tracks/t/tap"),
        ("POST", "/rooms/x/recordings"),
        ("GET", "/rooms/x/recordings"),
        ("DELETE", "/rooms/x/recordings"),
    ] {
        let (status, body) = http(server.addr, method, path, None).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
    }
    server.stop().await;
    // The recording API alone opens the recording routes, not /debug.
    let server = support::spawn_server(|c| c.recording_api = true).await;
    let (status, _) = http(server.addr, "GET", "/rooms/x/recordings", None).await;
    assert_eq!(status, 404, "no such room is still 404, but from the API");
    let (status, body) = http(
        server.addr,
        "POST",
        "/rooms/x/recordings",
        Some("{\"track\": 5}"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = http(server.addr, "GET", "/debug/rooms", None).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn svg_rendering_is_bounded_and_reports_a_missing_dot() {
    // Serialised: it changes PATH, which the other tests' `dot` runs read.
    let _serial = serial().await;
    use lamina::http::debug::{render_svg, RenderError};
    use std::time::Duration;
    let svg = render_svg("digraph { a -> b }", Duration::from_secs(10)).expect("graphviz renders");
    assert!(svg.contains("<svg"));
    // Without `dot` on the PATH the error says so (the route turns it into 501).
    let path = std::env::var_os("PATH");
    std::env::set_var("PATH", "/nonexistent");
    let missing = render_svg("digraph { a }", Duration::from_secs(1));
    if let Some(p) = path {
        std::env::set_var("PATH", p);
    }
    assert!(
        matches!(missing, Err(RenderError::NotInstalled)),
        "{missing:?}"
    );
}
