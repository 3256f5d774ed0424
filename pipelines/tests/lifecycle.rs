//! Peers leaving, join/leave cycles without leaks, peers removed before they connected.

mod support;

use std::time::{Duration, Instant};

use lamina_pipelines::{OfferPlan, PeerId, TrackId};
use support::{thread_count, Commands, Harness, Watchdog};

const T: Duration = Duration::from_secs(10);

fn others_tracks(h: &Harness, who: &str) -> Vec<TrackId> {
    let mut v: Vec<TrackId> = h
        .published
        .iter()
        .filter(|(_, (p, _))| p.as_str() != who)
        .map(|(t, _)| t.clone())
        .collect();
    v.sort();
    v
}

/// C leaves a three-party call; A and B keep decoding each other without a gap > 500 ms, also
/// through the rounds that answer C's former m-lines inactive.
#[test]
fn peer_leaving_does_not_disturb_the_others() {
    let _s = support::serial();
    let _w = Watchdog::new("peer_leaving_does_not_disturb_the_others", 90);
    let mut h = Harness::new("leave");
    for n in ["a", "b", "c"] {
        h.join_mesh(n);
    }
    h.assert_all_receive(10);
    let c_tracks = h.tracks_of("c");
    for n in ["a", "b"] {
        h.members[n].client.reset_gaps();
    }
    let t0 = Instant::now();
    h.leave("c");
    for t in &c_tracks {
        h.published.remove(t);
    }
    println!("remove_peer returned after {:?}", t0.elapsed());
    for n in ["a", "b"] {
        let want = others_tracks(&h, n);
        h.round(n, &want, None, true);
    }
    // One more second of media, then look at the gaps.
    for (who, other) in [("a", "b"), ("b", "a")] {
        for t in h.tracks_of(other) {
            assert!(h.wait_media(who, &t, 10, T), "{who} lost {t}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    h.wait(Duration::from_secs(2), |_| Instant::now() > deadline);
    for (who, other) in [("a", "b"), ("b", "a")] {
        for t in h.tracks_of(other) {
            let ml = h.mline_of(who, &t).unwrap();
            let gap = h.members[who].client.stats(ml).max_gap;
            println!("{who} <- {t}: largest gap {gap:?}");
            assert!(
                gap < Duration::from_millis(500),
                "{who} <- {t}: gap {gap:?}"
            );
        }
    }
    for t in &c_tracks {
        assert!(
            h.room.forwarded_packets(t).is_none(),
            "{t}'s forwarder left behind"
        );
    }
    assert!(!h.room.dot().contains("peer-c"));
    assert!(h.failures.is_empty(), "{:?}", h.failures);
    assert!(h.room.shutdown().blocking_recv().is_ok());
}

/// Ten times: C joins (publishing, receiving A), decodes, leaves. Threads and pipeline
/// elements come back to the baseline.
#[test]
fn ten_join_leave_cycles_leave_no_threads_or_elements() {
    let _s = support::serial();
    let _w = Watchdog::new("ten_join_leave_cycles_leave_no_threads_or_elements", 150);
    let mut h = Harness::new("cycles");
    h.join_mesh("a");
    let a_video = h
        .tracks_of("a")
        .into_iter()
        .find(|t| h.is_video(t))
        .unwrap();
    // Warm-up cycle (thread pools, plugin state), then the baseline.
    let cycle = |h: &mut Harness, i: usize, print: bool| {
        let base_threads = thread_count();
        let started = Instant::now();
        h.join("c", true);
        let want = h.tracks_of("a");
        h.round("c", &want, None, false);
        assert!(
            h.wait(T, |h| h.received("c", &a_video) > 0),
            "cycle {i}: no frame"
        );
        let ml = h.mline_of("c", &a_video).unwrap();
        let first = h.members["c"].client.stats(ml).first_at.unwrap() - started;
        assert!(
            h.wait(T, |h| h.tracks_of("c").len() == 2),
            "cycle {i}: c not published"
        );
        // Joins 0.6 s apart hit the forwarder's keyframe throttle; the retry keeps it short.
        assert!(
            first < Duration::from_millis(1500),
            "cycle {i}: first frame after {first:?}"
        );
        let joined = thread_count();
        if print {
            println!(
                "cycle {i}: first frame {first:?}, threads +{} with c (server + client)",
                joined - base_threads
            );
        }
        h.leave("c");
        for t in h.tracks_of("c") {
            h.published.remove(&t);
        }
    };
    cycle(&mut h, 0, true);
    h.wait(Duration::from_secs(5), |h| h.room.element_count() > 0);
    let settle = |h: &mut Harness, threads: usize, elements: usize| {
        h.wait(Duration::from_secs(5), |h| {
            thread_count() <= threads && h.room.element_count() == elements
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let base_threads = thread_count();
    let base_elements = h.room.element_count();
    println!("baseline: {base_threads} threads, {base_elements} elements");
    for i in 1..=10 {
        cycle(&mut h, i, true);
        assert!(
            settle(&mut h, base_threads, base_elements),
            "cycle {i}: {} threads (baseline {base_threads}), {} elements (baseline {base_elements})",
            thread_count(),
            h.room.element_count()
        );
    }
    assert!(h.wait_media("a", &a_video, 0, T));
    assert!(h.failures.is_empty(), "{:?}", h.failures);
    assert!(h.room.shutdown().blocking_recv().is_ok());
}

/// Peers removed at every early stage: right after add_peer; after their offer was answered
/// but before any candidate (never connected; its forwarder pads and webrtcbin sink pads are
/// still blocked); while A keeps streaming to B.
#[test]
fn peers_removed_before_they_connected() {
    let _s = support::serial();
    let _w = Watchdog::new("peers_removed_before_they_connected", 60);
    let mut h = Harness::new("early-leave");
    h.join_mesh("a");
    h.join_mesh("b");
    h.assert_all_receive(5);
    let base_elements = h.room.element_count();

    // 1. Removed right after being added.
    h.room.add_peer(&PeerId::from("x")).unwrap();
    h.room.remove_peer(&PeerId::from("x"));

    // 2. Answered (subscribing A and publishing), never connected, removed.
    let mut c = support::Client::new("y", true);
    c.add_recv(false);
    c.add_recv(true);
    let offer = c.create_offer(false);
    let mlines = support::Client::offered(&offer);
    let a_tracks = h.tracks_of("a");
    let mut a_iter = a_tracks.iter();
    let plan = OfferPlan::new(
        offer,
        mlines
            .iter()
            .filter(|m| m.sendonly)
            .map(|m| (m.mid.clone(), Harness::track_id("y", &m.mid)))
            .collect(),
        mlines
            .iter()
            .filter(|m| m.recvonly)
            .map(|m| (m.mid.clone(), a_iter.next().cloned()))
            .collect(),
    )
    .expect("offer summarises");
    let y = PeerId::from("y");
    h.room.add_peer(&y).unwrap();
    h.room.handle_offer(&y, plan).unwrap();
    // The answer arrives; "y" gets no candidates and never connects.
    let got = h.wait(T, |h| h.log.iter().any(|(_, e)| matches!(e, lamina_pipelines::MediaEvent::AnswerReady { peer, .. } if peer == &y)));
    assert!(got, "no answer for y");
    let t0 = Instant::now();
    h.room.remove_peer(&y);
    drop(c);

    // 3. Removed while its offer is being handled.
    let mut z = support::Client::new("z", false);
    z.add_recv(true);
    let offer = z.create_offer(false);
    let zid = PeerId::from("z");
    h.room.add_peer(&zid).unwrap();
    let mid = support::Client::offered(&offer)[0].mid.clone();
    let a_video = a_tracks.iter().find(|t| h.is_video(t)).unwrap().clone();
    h.room
        .handle_offer(
            &zid,
            OfferPlan::new(offer, vec![], vec![(mid, Some(a_video.clone()))])
                .expect("offer summarises"),
        )
        .unwrap();
    h.room.remove_peer(&zid);
    drop(z);

    assert!(
        h.wait(T, |h| h.room.element_count() == base_elements),
        "elements {} vs baseline {base_elements}",
        h.room.element_count()
    );
    println!("early removals done after {:?}", t0.elapsed());
    assert!(h.wait_media("b", &a_video, 15, T), "b stopped receiving a");
    assert!(h.failures.is_empty(), "{:?}", h.failures);
    assert!(h.room.shutdown().blocking_recv().is_ok());
}
