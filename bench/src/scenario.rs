//! One measured run: a server, R rooms of P publishing participants plus S receive-only
//! participants each, a warm-up, a measurement window, then late joiners. In a loss scenario
//! every receiver drops a share of the video it receives and the window's drops are followed
//! until repaired or past [`REPAIR_DEADLINE`]. In a simulcast scenario every publisher sends
//! its camera as three layers (`l`, `m`, `h`) and the receivers take one of each.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::janus::{JanusConn, JanusPeer};
use crate::lamina::LaminaPeer;
use crate::late_join::{wait_decodable, FirstFrames, LATE_JOIN_TIMEOUT};
use crate::loss::{LossSpec, REPAIR_DEADLINE};
use crate::media::MediaSet;
use crate::metrics::{lock, quantile, PeerStats, RxSnapshot, RxWindow, Shared};
use crate::peer::Publish;
use crate::result::RunResult;
use crate::servers::{
    format_thread_cpu, is_tokio_thread, ProcSample, ServerKind, ServerProc, TURN_THREAD,
};
use crate::BenchError;

/// The shape of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Name in reports.
    pub name: String,
    /// Rooms.
    pub rooms: usize,
    /// Publishing (and subscribing) participants per room.
    pub publishers: usize,
    /// Receive-only participants per room.
    pub subscribers: usize,
    /// Late joiners measured after the window (receive-only, one at a time, room 0).
    pub late_joins: usize,
    /// Seconds of warm-up after every stream flows.
    pub warmup_s: u64,
    /// Seconds of measurement.
    pub measure_s: u64,
    /// Share of received video packets every receiver drops, percent (0: no simulated loss).
    pub loss_percent: f64,
    /// Seed of the drop decisions.
    pub loss_seed: u64,
    /// One-way latency the receivers add under simulated loss, ms.
    pub loss_latency_ms: u64,
    /// Lamina participants are relay-only, like the Membrane browser client: each allocates a
    /// relay on Lamina's embedded TURN server and every datagram crosses it. Janus has no TURN
    /// server here: relay scenarios run against Lamina only.
    pub relay: bool,
    /// Publishers send their camera as simulcast layers `l`, `m`, `h`
    /// ([`crate::media::add_layers`]); receivers take the server's default (the highest)
    /// unless [`Scenario::mixed_layers`].
    pub simulcast: bool,
    /// Simulcast with every second participant of a room (odd positions) asking for `l` of
    /// every remote camera (Lamina: `setTargetTrackVariant`; Janus: `substream` 0).
    pub mixed_layers: bool,
}

impl Scenario {
    /// Participants per room.
    pub fn per_room(&self) -> usize {
        self.publishers + self.subscribers
    }

    /// The simulated downlink loss, if any.
    pub fn loss(&self) -> Option<LossSpec> {
        (self.loss_percent > 0.0).then_some(LossSpec {
            percent: self.loss_percent,
            seed: self.loss_seed,
            latency: Duration::from_millis(self.loss_latency_ms),
        })
    }

    /// The simulcast layer (index into [`crate::media::RIDS`]) participant `i` of a room asks
    /// for, if any.
    pub fn receive_layer(&self, i: usize) -> Option<usize> {
        (self.simulcast && self.mixed_layers && i % 2 == 1).then_some(0)
    }

    /// Forwarded streams (audio and video) the receivers should get in total.
    pub fn expected_streams(&self) -> usize {
        let per_room = self.publishers * (self.per_room() - 1) * 2;
        per_room * self.rooms
    }
}

/// A participant of either server.
enum Participant {
    Lamina(LaminaPeer),
    Janus(JanusPeer),
}

impl Participant {
    fn stats(&self) -> Vec<Arc<Mutex<PeerStats>>> {
        match self {
            Participant::Lamina(p) => vec![p.peer.stats.clone()],
            Participant::Janus(p) => {
                let mut v = vec![p.subscriber.stats.clone()];
                v.extend(p.publisher.as_ref().map(|p| p.stats.clone()));
                v
            }
        }
    }

    /// The peer connection whose sending is counted (none for a Janus receive-only one).
    fn tx_stats(&self) -> Option<Arc<Mutex<PeerStats>>> {
        match self {
            Participant::Lamina(p) => Some(p.peer.stats.clone()),
            Participant::Janus(p) => p.publisher.as_ref().map(|p| p.stats.clone()),
        }
    }

    fn join_started(&self) -> Instant {
        match self {
            Participant::Lamina(p) => p.join_started,
            Participant::Janus(p) => p.join_started,
        }
    }

    fn leave(self) {
        match self {
            Participant::Lamina(p) => p.leave(),
            Participant::Janus(p) => p.leave(),
        }
    }
}

/// Everything a run needs besides the scenario.
pub struct Env {
    /// The media to publish.
    pub media: MediaSet,
    /// Its measured video bitrate.
    pub video_kbps: f64,
    /// Address the Lamina peers bind.
    pub lamina_ip: IpAddr,
    /// Address the Janus peers bind (a veth address Janus gathers on).
    pub janus_ip: IpAddr,
    /// Interface Janus gathers on.
    pub janus_if: String,
    /// The `lamina` binary.
    pub lamina_bin: std::path::PathBuf,
    /// Where server logs go.
    pub log_dir: std::path::PathBuf,
}

#[allow(clippy::too_many_arguments)]
async fn join(
    server: &ServerProc,
    env: &Env,
    room: usize,
    name: &str,
    publish: Option<Publish>,
    shared: &Arc<Shared>,
    relay: bool,
    receive_layer: Option<usize>,
) -> Result<Participant, BenchError> {
    Ok(match server.kind {
        ServerKind::Lamina => Participant::Lamina(
            LaminaPeer::join(
                &server.url,
                &format!("bench{room}"),
                name,
                env.lamina_ip,
                publish,
                shared.clone(),
                relay,
                receive_layer,
            )
            .await?,
        ),
        ServerKind::Janus => Participant::Janus(
            JanusPeer::join(
                &server.url,
                1000 + room as u64,
                name,
                env.janus_ip,
                publish,
                shared.clone(),
                receive_layer,
            )
            .await?,
        ),
    })
}

/// Streams with at least one packet, over `stats`.
fn flowing(stats: &[Arc<Mutex<PeerStats>>]) -> usize {
    stats
        .iter()
        .map(|s| lock(s).rx.values().filter(|r| r.packets > 0).count())
        .sum()
}

/// Runs `sc` against a fresh `kind` server.
pub async fn run(kind: ServerKind, sc: &Scenario, env: &Env) -> Result<RunResult, BenchError> {
    let log = env.log_dir.join(format!("{kind}-{}.log", sc.name));
    let server = match kind {
        ServerKind::Lamina => ServerProc::lamina(&env.lamina_bin, &log)?,
        ServerKind::Janus => ServerProc::janus(&env.janus_if, &log)?,
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle = server.sample();
    let shared = Shared::new(sc.loss());
    let mut res = RunResult {
        server: kind.to_string(),
        scenario: sc.name.clone(),
        rooms: sc.rooms,
        per_room: sc.per_room(),
        publishers: sc.publishers,
        streams_expected: sc.expected_streams(),
        idle_rss_mib: mib(idle.rss),
        relay: sc.relay,
        simulcast: sc.simulcast,
        low_receivers: (0..sc.per_room())
            .filter(|i| sc.receive_layer(*i).is_some())
            .count(),
        ..Default::default()
    };
    let _admin = if kind == ServerKind::Janus {
        let (conn, _ev) = JanusConn::connect(&server.url).await?;
        let h = conn.attach().await?;
        for r in 0..sc.rooms {
            conn.create_room(h, 1000 + r as u64, sc.per_room() + sc.late_joins + 2)
                .await?;
        }
        Some(conn)
    } else {
        None
    };

    let start = Instant::now();
    let mut people = Vec::new();
    // Who joined: (room, layer asked for).
    let mut roster = Vec::new();
    let mut index = 0u32;
    for room in 0..sc.rooms {
        for i in 0..sc.per_room() {
            let publish = (i < sc.publishers).then(|| {
                index += 1;
                Publish {
                    media: env.media.clone(),
                    index,
                    simulcast: sc.simulcast,
                }
            });
            let name = format!("r{room}p{i}");
            let layer = sc.receive_layer(i);
            match join(&server, env, room, &name, publish, &shared, sc.relay, layer).await {
                Ok(p) => {
                    people.push(p);
                    roster.push((room, layer));
                }
                Err(e) => res.errors.push(e.to_string()),
            }
        }
    }
    let senders: Vec<_> = people.iter().map(Participant::tx_stats).collect();
    let stats: Vec<_> = people.iter().flat_map(|p| p.stats()).collect();
    let deadline = Instant::now() + Duration::from_secs(30 + 4 * sc.per_room() as u64);
    while flowing(&stats) < res.streams_expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    res.setup_s = start.elapsed().as_secs_f64();
    if flowing(&stats) < res.streams_expected {
        res.errors.push(format!(
            "only {} of {} streams flowing after {:.0} s",
            flowing(&stats),
            res.streams_expected,
            res.setup_s
        ));
    }
    tokio::time::sleep(Duration::from_secs(sc.warmup_s)).await;

    // Measurement window.
    let (s0, b0, r0, t0) = (
        server.sample(),
        ProcSample::read("self").unwrap_or_default(),
        RxSnapshot::take(&stats),
        Instant::now(),
    );
    let sent =
        |stats: &[Arc<Mutex<PeerStats>>]| stats.iter().map(|s| lock(s).tx_packets).sum::<u64>();
    let tx0 = sent(&stats);
    let sent_by_layer = tx_by_participant(&senders);
    let nacks0 = nacks_sent(&stats);
    let rtcp_rx =
        |stats: &[Arc<Mutex<PeerStats>>]| stats.iter().map(|s| lock(s).rtcp_rx).sum::<u64>();
    let relay_rx =
        |stats: &[Arc<Mutex<PeerStats>>]| stats.iter().map(|s| lock(s).relay_rx).sum::<u64>();
    let (rtcp0, sw0, relay0) = (rtcp_rx(&stats), server.switches(), relay_rx(&stats));
    shared.measuring.store(true, Ordering::Relaxed);
    let mut threads = s0.threads;
    let mut allocations = server.turn_allocations().await;
    while t0.elapsed() < Duration::from_secs(sc.measure_s) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        threads = threads.max(server.sample().threads);
    }
    allocations = allocations.max(server.turn_allocations().await);
    shared.measuring.store(false, Ordering::Relaxed);
    let (s1, b1, r1, wall) = (
        server.sample(),
        ProcSample::read("self").unwrap_or_default(),
        RxSnapshot::take(&stats),
        t0.elapsed().as_secs_f64(),
    );
    let (rtcp1, sw1, relay1) = (rtcp_rx(&stats), server.switches(), relay_rx(&stats));
    res.turn_allocations = allocations.unwrap_or(0);
    res.relay_rx_per_s = relay1.saturating_sub(relay0) as f64 / wall;
    res.relayed_peers = stats
        .iter()
        .filter(|s| {
            let s = lock(s);
            s.relayed && s.connected.is_some()
        })
        .count();
    let by_name = sw1.cpu_by_name_since(&sw0);
    res.tokio_cpu_pct = 100.0
        * by_name
            .iter()
            .filter(|(name, _)| is_tokio_thread(name))
            .map(|(_, cpu)| cpu)
            .sum::<f64>()
        / wall;
    res.turn_cpu_pct = 100.0 * by_name.get(TURN_THREAD).copied().unwrap_or(0.0) / wall;
    res.thread_cpu = format_thread_cpu(&by_name, wall);
    let participants = (sc.per_room() * sc.rooms).max(1) as f64;
    res.rtcp_per_participant_s = (rtcp1 - rtcp0) as f64 / participants / wall;
    res.server_wakeups_per_s = sw1.all.saturating_sub(sw0.all) as f64 / wall;
    res.rtcp_thread_wakeups_per_s = sw1.rtcp.saturating_sub(sw0.rtcp) as f64 / wall;
    res.rtcp_threads = sw1.rtcp_threads;
    res.rtcp_thread_cpu_pct = 100.0 * (sw1.rtcp_cpu_s - sw0.rtcp_cpu_s).max(0.0) / wall;
    let w = RxWindow::between(&r0, &r1);
    let fanout = if sc.simulcast {
        simulcast_fanout(
            &roster,
            &sent_by_layer,
            &tx_by_participant(&senders),
            &mut res,
            wall,
        )
    } else {
        (sent(&stats) - tx0) * (sc.per_room() as u64 - 1)
    };
    res.ingest_pkts_per_s = (sent(&stats) - tx0) as f64 / wall;
    res.delivered_pct = if fanout > 0 {
        100.0 * w.packets as f64 / fanout as f64
    } else {
        0.0
    };
    res.window_s = wall;
    res.streams_flowing = w.loss_pct.len();
    res.pkts_per_s = w.packets as f64 / wall;
    res.kbps = w.bytes as f64 * 8.0 / wall / 1000.0;
    res.server_cpu_s = s1.cpu_s - s0.cpu_s;
    res.server_cpu_pct = 100.0 * res.server_cpu_s / wall;
    res.pkts_per_cpu_s = if res.server_cpu_s > 0.0 {
        w.packets as f64 / res.server_cpu_s
    } else {
        0.0
    };
    res.threads = threads;
    res.srtp_library = server.srtp_library();
    res.bench_cpu_pct = 100.0 * (b1.cpu_s - b0.cpu_s) / wall;
    res.loadavg = loadavg();
    let mut loss = w.loss_pct.clone();
    res.loss_mean_pct = if loss.is_empty() {
        0.0
    } else {
        loss.iter().sum::<f64>() / loss.len() as f64
    };
    res.loss_p50_pct = quantile(&mut loss, 0.5);
    res.loss_max_pct = loss.last().copied().unwrap_or(0.0);
    res.loss_total_pct = w.loss_total_pct;
    let mut delays: Vec<u32> = stats
        .iter()
        .flat_map(|s| lock(s).delays_us.clone())
        .collect();
    res.delay_samples = delays.len();
    res.delay_p50_ms = quantile(&mut delays, 0.5) / 1000.0;
    res.delay_p99_ms = quantile(&mut delays, 0.99) / 1000.0;
    for s in &stats {
        if let Some(e) = &lock(s).error {
            res.errors.push(e.clone());
        }
    }
    let mut estimates: Vec<f64> = stats
        .iter()
        .filter_map(|s| lock(s).downlink_estimate)
        .map(|bps| bps as f64 / 1000.0)
        .collect();
    res.downlink_estimate_min_kbps = estimates.iter().copied().fold(f64::NAN, f64::min);
    if res.downlink_estimate_min_kbps.is_nan() {
        res.downlink_estimate_min_kbps = 0.0;
    }
    res.downlink_estimate_p50_kbps = quantile(&mut estimates, 0.5);
    if sc.simulcast {
        let rx: [u64; 3] = stats.iter().fold([0; 3], |mut acc, s| {
            let s = lock(s);
            for (a, n) in acc.iter_mut().zip(s.rx_layers) {
                *a += n;
            }
            acc
        });
        res.rx_l_pkts_per_s = rx[0] as f64 / wall;
        res.rx_m_pkts_per_s = rx[1] as f64 / wall;
        res.rx_h_pkts_per_s = rx[2] as f64 / wall;
    }
    if let Some(loss) = sc.loss() {
        // Let the window's last drops reach their deadline (str0m's stats lag a little more).
        tokio::time::sleep(REPAIR_DEADLINE + Duration::from_millis(300)).await;
        res.drop_pct = loss.percent;
        res.added_latency_ms = sc.loss_latency_ms;
        repair_figures(&mut res, &stats);
        res.nacks_sent = nacks_sent(&stats) - nacks0;
    }

    // Late joiners, one at a time, into room 0.
    let room0: Vec<_> = senders
        .iter()
        .zip(&roster)
        .filter(|(_, (room, _))| *room == 0)
        .filter_map(|(tx, _)| tx.clone())
        .collect();
    let mut first = FirstFrames::default();
    for k in 0..sc.late_joins {
        let name = format!("late{k}");
        let p = match join(&server, env, 0, &name, None, &shared, sc.relay, None).await {
            Ok(p) => p,
            Err(e) => {
                res.errors.push(e.to_string());
                continue;
            }
        };
        let st = p.stats();
        wait_decodable(&st, sc.publishers, LATE_JOIN_TIMEOUT).await;
        first.add(&st, p.join_started(), &room0, sc.publishers);
        p.leave();
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    first.write(&mut res);

    let mut switches = std::collections::BTreeMap::<String, u64>::new();
    for s in &stats {
        for (k, n) in &lock(s).layer_switches {
            *switches.entry(k.clone()).or_default() += n;
        }
    }
    res.layer_switches = switches
        .iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    let end = server.sample();
    res.peak_rss_mib = mib(end.peak_rss);
    res.mib_per_participant = (res.peak_rss_mib - res.idle_rss_mib).max(0.0) / participants;
    for p in people {
        p.leave();
    }
    drop(_admin);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.stop();
    Ok(res)
}

/// What each participant has sent so far: (audio, video by layer `l`, `m`, `h`).
fn tx_by_participant(senders: &[Option<Arc<Mutex<PeerStats>>>]) -> Vec<(u64, [u64; 3])> {
    senders
        .iter()
        .map(|s| {
            s.as_ref().map_or((0, [0; 3]), |s| {
                let s = lock(s);
                (s.tx_audio, s.tx_layers)
            })
        })
        .collect()
}

/// Packets the receivers of a simulcast run should have got between the `before` and `after`
/// readings of what each participant sent: every other participant of the sender's room gets
/// its audio and the layer it asked for (`h` by default). Also fills the sent-per-layer
/// figures of `res`.
fn simulcast_fanout(
    roster: &[(usize, Option<usize>)],
    before: &[(u64, [u64; 3])],
    after: &[(u64, [u64; 3])],
    res: &mut RunResult,
    wall: f64,
) -> u64 {
    let mut fanout = 0;
    let mut layers = [0u64; 3];
    for (p, ((room, _), ((a0, v0), (a1, v1)))) in
        roster.iter().zip(before.iter().zip(after)).enumerate()
    {
        let audio = a1 - a0;
        let video: Vec<u64> = v1.iter().zip(v0).map(|(x, y)| x - y).collect();
        for (l, v) in layers.iter_mut().zip(&video) {
            *l += v;
        }
        for (r, (rroom, want)) in roster.iter().enumerate() {
            if r != p && rroom == room {
                fanout += audio + video[want.unwrap_or(2)];
            }
        }
    }
    res.tx_l_pkts_per_s = layers[0] as f64 / wall;
    res.tx_m_pkts_per_s = layers[1] as f64 / wall;
    res.tx_h_pkts_per_s = layers[2] as f64 / wall;
    fanout
}

/// NACK messages sent so far by `stats`.
fn nacks_sent(stats: &[Arc<Mutex<PeerStats>>]) -> u64 {
    stats.iter().map(|s| lock(s).nacks_sent).sum()
}

/// Settles every received video stream's drops and sums them into `res`.
fn repair_figures(res: &mut RunResult, stats: &[Arc<Mutex<PeerStats>>]) {
    let mut repair_us = Vec::new();
    for p in stats {
        for s in lock(p).rx.values_mut().filter(|s| s.video) {
            s.repair.settle();
            res.video_streams += 1;
            res.nack_streams += usize::from(s.negotiated.nack || s.negotiated.rtx);
            res.rtx_streams += usize::from(s.negotiated.rtx);
            res.dropped += s.repair.dropped;
            res.repaired += s.repair.repaired;
            res.repaired_rtx += s.repair.repaired_rtx;
            res.unrepaired += s.repair.unrepaired;
            repair_us.extend_from_slice(&s.repair.repair_us);
        }
    }
    if res.dropped > 0 {
        res.repaired_pct = 100.0 * res.repaired as f64 / res.dropped as f64;
        res.unrepaired_pct = 100.0 * res.unrepaired as f64 / res.dropped as f64;
    }
    res.repair_p50_ms = quantile(&mut repair_us, 0.5) / 1000.0;
    res.repair_p95_ms = quantile(&mut repair_us, 0.95) / 1000.0;
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}
