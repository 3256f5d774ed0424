//! The figures of one measured run ([`RunResult`]), as the reports, the chart and the
//! summaries read them.

use serde::Serialize;

/// Figures of one run.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RunResult {
    /// Server name.
    pub server: String,
    /// Scenario name.
    pub scenario: String,
    /// Which repeat of the scenario this run was (1-based; 0 in reports written before
    /// repeats existed).
    pub repeat: usize,
    /// Rooms.
    pub rooms: usize,
    /// Participants per room.
    pub per_room: usize,
    /// Publishers per room.
    pub publishers: usize,
    /// Streams that should be forwarded / that flowed during the window.
    pub streams_expected: usize,
    /// Streams that received packets in the window.
    pub streams_flowing: usize,
    /// Seconds until every stream flowed after the first join.
    pub setup_s: f64,
    /// Window length in seconds.
    pub window_s: f64,
    /// Forwarded RTP packets per second, counted at the receivers.
    pub pkts_per_s: f64,
    /// Forwarded payload kbit/s at the receivers.
    pub kbps: f64,
    /// Packets received / packets the publishers sent times their receivers, in percent
    /// (below 100 when the server drops or holds packets; loss counts only sequence gaps). In a
    /// simulcast run a receiver counts the audio and the video layer it asked for (`h` unless
    /// it asked for `l`): a server that forwards a lower layer on its own (Lamina under a low
    /// downlink estimate) shows below 100.
    pub delivered_pct: f64,
    /// Server CPU seconds in the window.
    pub server_cpu_s: f64,
    /// Server CPU in percent of one core.
    pub server_cpu_pct: f64,
    /// Forwarded packets per server CPU-second.
    pub pkts_per_cpu_s: f64,
    /// Server peak RSS (MiB) and RSS right after start.
    pub peak_rss_mib: f64,
    /// RSS right after start (MiB).
    pub idle_rss_mib: f64,
    /// (peak - idle) / participants, MiB.
    pub mib_per_participant: f64,
    /// Server threads (max during the window).
    pub threads: u64,
    /// Per-stream loss: mean, p50 and max in percent; aggregate over all streams.
    pub loss_mean_pct: f64,
    /// Median stream loss.
    pub loss_p50_pct: f64,
    /// Worst stream loss.
    pub loss_max_pct: f64,
    /// Packets missing / expected over all streams.
    pub loss_total_pct: f64,
    /// Server-added delay p50 / p99 in ms (video packets).
    pub delay_p50_ms: f64,
    /// p99.
    pub delay_p99_ms: f64,
    /// Delay samples.
    pub delay_samples: usize,
    /// Late joiner: join → first complete keyframe per remote video stream, p50 / p95 ms.
    pub first_frame_p50_ms: f64,
    /// p95.
    pub first_frame_p95_ms: f64,
    /// Late joiner, where the time goes (medians over the late joiners): join → its receiving
    /// connection up (ICE + DTLS, seen by the joiner), ms.
    pub first_frame_connect_p50_ms: f64,
    /// Receiving connection up → the publishers' first keyframe request after the join (one
    /// sample per publisher and late joiner; negative when the server asked before the joiner
    /// saw its connection up), ms. The rest of the first frame (request → complete keyframe at
    /// the joiner) is what is left of `first_frame_p50_ms`.
    pub first_frame_request_p50_ms: f64,
    /// Receiving connection up → the publishers' keyframe sent in answer to that request (their
    /// next frame tick), ms.
    pub first_frame_key_sent_p50_ms: f64,
    /// Receiving connection up → the joiner's first video packet of each stream, ms.
    pub first_frame_packet_p50_ms: f64,
    /// Late-joiner streams measured / that never showed a frame within 10 s.
    pub first_frame_samples: usize,
    /// Late-joiner streams without a frame.
    pub first_frame_missing: usize,
    /// Simulated downlink loss: share of received video packets dropped, percent (0: none).
    pub drop_pct: f64,
    /// One-way latency the receivers added under simulated loss, ms (in the delay figures too).
    pub added_latency_ms: u64,
    /// Received video streams (under simulated loss).
    pub video_streams: usize,
    /// Video streams whose m-line negotiated generic NACK or RTX (their receivers NACK gaps).
    pub nack_streams: usize,
    /// Video streams with RTX negotiated.
    pub rtx_streams: usize,
    /// Video packets the receivers dropped during the window.
    pub dropped: u64,
    /// Dropped packets received again within the repair deadline (1 s).
    pub repaired: u64,
    /// Of those, repaired by RTX (the rest came as plain retransmissions).
    pub repaired_rtx: u64,
    /// Dropped packets still missing after the repair deadline.
    pub unrepaired: u64,
    /// repaired / dropped, percent.
    pub repaired_pct: f64,
    /// unrepaired / dropped, percent.
    pub unrepaired_pct: f64,
    /// Drop → repair time p50 / p95 in ms.
    pub repair_p50_ms: f64,
    /// p95.
    pub repair_p95_ms: f64,
    /// NACK messages the receivers sent from the window's start to the end of its repair
    /// deadline.
    pub nacks_sent: u64,
    /// Compound RTCP packets (SRTCP datagrams) the server sent, counted at the receivers, per
    /// participant and second (a Janus participant has two peer connections, both counted).
    pub rtcp_per_participant_s: f64,
    /// Server wake-ups: voluntary context switches of all its threads per second.
    pub server_wakeups_per_s: f64,
    /// Of those, the wake-ups of GStreamer's `rtpsession-rtcp` threads (one per rtpsession;
    /// none in Janus).
    pub rtcp_thread_wakeups_per_s: f64,
    /// `rtpsession-rtcp` threads at the end of the window.
    pub rtcp_threads: u64,
    /// CPU of the `rtpsession-rtcp` threads (RTCP built, encrypted and sent), percent of one
    /// core; part of `server_cpu_pct`.
    pub rtcp_thread_cpu_pct: f64,
    /// Load generator CPU in percent of one core during the window.
    pub bench_cpu_pct: f64,
    /// 1-minute load average at the end of the window.
    pub loadavg: f64,
    /// The participants were relay-only (see [`Scenario::relay`]).
    pub relay: bool,
    /// Participants of the window whose only candidate was a TURN relay and that connected.
    pub relayed_peers: usize,
    /// Datagrams the participants received through their relays in the window, per second.
    pub relay_rx_per_s: f64,
    /// Most allocations the server's `/metrics` (`lamina_turn_allocations`) showed during the
    /// window (Lamina only).
    pub turn_allocations: u64,
    /// CPU of the server's tokio threads (`tokio-rt-worker`: the embedded TURN server,
    /// signalling, metrics), percent of one core; part of `server_cpu_pct`. In a relay
    /// scenario the rise over the plain one is the TURN server's share.
    pub tokio_cpu_pct: f64,
    /// CPU of the server's `lamina-turn` thread (the embedded TURN server, when it runs on a
    /// thread of its own), percent of one core; part of `server_cpu_pct`.
    pub turn_cpu_pct: f64,
    /// Server CPU by thread name (digits dropped) in the window, the busiest first, percent of
    /// one core (threads that exited during the window are missing).
    pub thread_cpu: String,
    /// The libsrtp2 file(s) the server process had mapped at the window's end.
    pub srtp_library: String,
    /// The publishers sent simulcast (see [`Scenario::simulcast`]).
    pub simulcast: bool,
    /// Participants (per room) that asked for the `l` layer.
    pub low_receivers: usize,
    /// Packets all publishers sent per second in the window (audio and every video layer: what
    /// the server takes in).
    pub ingest_pkts_per_s: f64,
    /// Simulcast: video packets per second the publishers sent on layer `l` (all publishers).
    pub tx_l_pkts_per_s: f64,
    /// On layer `m`.
    pub tx_m_pkts_per_s: f64,
    /// On layer `h`.
    pub tx_h_pkts_per_s: f64,
    /// Simulcast: video packets per second the receivers got that had been sent on layer `l`
    /// (identified by their payload).
    pub rx_l_pkts_per_s: f64,
    /// Sent on `m`.
    pub rx_m_pkts_per_s: f64,
    /// Sent on `h`.
    pub rx_h_pkts_per_s: f64,
    /// Lamina: the receivers' downlink estimates (`bandwidthEstimation`, the latest each got by
    /// the end of the window), median, kbit/s (0: none told).
    pub downlink_estimate_p50_kbps: f64,
    /// The lowest of them.
    pub downlink_estimate_min_kbps: f64,
    /// Layer switches the receivers were told of over the whole run: Lamina's
    /// `encodingSwitched` (`"<rid> <reason>"`), Janus's `substream` events (`"<rid>
    /// substream"`), with counts.
    pub layer_switches: String,
    /// Errors seen (join failures, peer errors).
    pub errors: Vec<String>,
}

impl RunResult {
    /// The run's figures on one line (progress on stderr).
    pub fn one_line(&self) -> String {
        let r = self;
        let mut line = format!(
            "streams {}/{} pkt/s {:.0} delivered {:.1}% CPU {:.1}% pkt/CPU-s {:.0} RSS {:.1} MiB loss {:.2}% delay p50/p99 {:.2}/{:.2} ms first frame p50 {:.0} ms (connected {:.0}, then keyframe request {:+.0}, keyframe sent {:+.0}, first video packet {:+.0}) RTCP/participant/s {:.1} wake-ups/s {:.0} (RTCP threads {:.0}, {} threads, {:.2}% CPU){}",
            r.streams_flowing,
            r.streams_expected,
            r.pkts_per_s,
            r.delivered_pct,
            r.server_cpu_pct,
            r.pkts_per_cpu_s,
            r.peak_rss_mib,
            r.loss_total_pct,
            r.delay_p50_ms,
            r.delay_p99_ms,
            r.first_frame_p50_ms,
            r.first_frame_connect_p50_ms,
            r.first_frame_request_p50_ms,
            r.first_frame_key_sent_p50_ms,
            r.first_frame_packet_p50_ms,
            r.rtcp_per_participant_s,
            r.server_wakeups_per_s,
            r.rtcp_thread_wakeups_per_s,
            r.rtcp_threads,
            r.rtcp_thread_cpu_pct,
            if r.errors.is_empty() { String::new() } else { format!(" errors: {}", r.errors.join("; ")) }
        );
        line += &format!(
            "\n   tokio-thread CPU {:.2}%, TURN-thread CPU {:.2}%; CPU by thread: {}; libsrtp2: {}",
            r.tokio_cpu_pct, r.turn_cpu_pct, r.thread_cpu, r.srtp_library
        );
        if r.downlink_estimate_p50_kbps > 0.0 {
            line += &format!(
                "\n   downlink estimates told to the receivers at the window's end: median {:.0}, lowest {:.0} kbit/s",
                r.downlink_estimate_p50_kbps, r.downlink_estimate_min_kbps
            );
        }
        if r.simulcast {
            line += &format!(
                "\n   simulcast: publishers sent l/m/h {:.0}/{:.0}/{:.0} pkt/s ({:.0} pkt/s in with audio); receivers got l/m/h {:.0}/{:.0}/{:.0} pkt/s ({} of {} per room asked for l); layer switches: {}",
                r.tx_l_pkts_per_s,
                r.tx_m_pkts_per_s,
                r.tx_h_pkts_per_s,
                r.ingest_pkts_per_s,
                r.rx_l_pkts_per_s,
                r.rx_m_pkts_per_s,
                r.rx_h_pkts_per_s,
                r.low_receivers,
                r.per_room,
                if r.layer_switches.is_empty() { "none" } else { &r.layer_switches }
            );
        }
        if r.relay {
            line += &format!(
                "\n   relay-only: {} participants connected through relays, {} TURN allocations, {:.0} datagrams/s received through them",
                r.relayed_peers, r.turn_allocations, r.relay_rx_per_s
            );
        }
        if r.drop_pct > 0.0 {
            line += &format!(
                "\n   dropped {} ({}% of received video): repaired {} ({:.1}%, {} by RTX), unrepaired {} ({:.1}%), NACKs sent {}, NACK/RTX negotiated on {}/{} of {} video streams",
                r.dropped,
                r.drop_pct,
                r.repaired,
                r.repaired_pct,
                r.repaired_rtx,
                r.unrepaired,
                r.unrepaired_pct,
                r.nacks_sent,
                r.nack_streams,
                r.rtx_streams,
                r.video_streams
            );
        }
        line
    }
}
