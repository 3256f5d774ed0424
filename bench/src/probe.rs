//! `--probe-webrtcbin N`: what a webrtcbin load client would cost. Joins N
//! [`lamina_client::Participant`]s (webrtcbin, live VP8/Opus test sources, decoding what they
//! receive) into one Lamina room and reads this process's CPU and memory over a window, for
//! comparison with the str0m peers the benchmark uses (`bench CPU %` of a `roomN` run).

use std::time::{Duration, Instant};

use lamina_client::{Participant, ParticipantConfig};

use crate::scenario::Env;
use crate::servers::{ProcSample, ServerProc};

/// Runs the probe and prints one line of figures.
pub async fn webrtcbin(n: usize, measure_s: u64, env: &Env) -> anyhow::Result<()> {
    gst::init()?;
    let log = env.log_dir.join("lamina-probe.log");
    let server = ServerProc::lamina(&env.lamina_bin, &log)?;
    let before = ProcSample::read("self").unwrap_or_default();
    let mut people = Vec::new();
    for i in 0..n {
        people.push(
            Participant::join(ParticipantConfig {
                url: server.url.clone(),
                room: "probe".into(),
                name: format!("w{i}"),
                audio: true,
                video: true,
                receive: true,
            })
            .await?,
        );
    }
    let want = 2 * (n - 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while people.iter().any(|p| {
        p.snapshot()
            .tracks
            .values()
            .filter(|t| t.frames > 0)
            .count()
            < want
    }) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "webrtcbin participants never all played"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (c0, s0, t0) = (
        ProcSample::read("self").unwrap_or_default(),
        server.sample(),
        Instant::now(),
    );
    let f0: u64 = people.iter().map(|p| p.snapshot().total_frames()).sum();
    tokio::time::sleep(Duration::from_secs(measure_s)).await;
    let (c1, s1, wall) = (
        ProcSample::read("self").unwrap_or_default(),
        server.sample(),
        t0.elapsed().as_secs_f64(),
    );
    let f1: u64 = people.iter().map(|p| p.snapshot().total_frames()).sum();
    let cpu = 100.0 * (c1.cpu_s - c0.cpu_s) / wall;
    println!(
        "webrtcbin probe: {n} participants (live vp8enc 320x240@15 + opusenc, decoding {want} streams each): \
         client CPU {cpu:.0} % of one core = {:.1} % per participant; client RSS {:.0} MiB ({:.1} MiB per participant above start); \
         threads {}; {:.0} decoded frames/s; server CPU {:.1} %",
        cpu / n as f64,
        c1.rss as f64 / 1048576.0,
        (c1.rss.saturating_sub(before.rss)) as f64 / 1048576.0 / n as f64,
        c1.threads,
        (f1 - f0) as f64 / wall,
        100.0 * (s1.cpu_s - s0.cpu_s) / wall,
    );
    for p in people {
        p.leave().await;
    }
    server.stop();
    Ok(())
}
