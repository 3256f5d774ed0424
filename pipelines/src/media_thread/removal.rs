//! Taking things out of the graph in the safe order (docs/webrtcbin.md §4.1): a peer, a
//! track, a publisher pad that went away, the whole room.

use gst::prelude::*;

use super::MediaThread;
use crate::ids::{PeerId, TrackId};
use crate::peers::MLine;
use crate::port::Branches;

impl MediaThread {
    pub(super) fn src_pad_removed(&mut self, peer: &PeerId, pad: &str) {
        let Some(p) = self.peers.get(peer) else {
            return;
        };
        let Some(ghost) = p.pb.bin.static_pad(pad) else {
            return;
        };
        let fwd_sink = ghost.peer();
        let _ = ghost.set_active(false);
        let _ = p.pb.bin.remove_pad(&ghost);
        // A simulcast stream's own forwarder sink goes with it.
        if let Some(sink) = &fwd_sink {
            crate::peer_bin::release_layer_sink(sink);
        }
        // A retired forwarder whose upstream pad is gone can go now.
        if let Some(element) = fwd_sink.and_then(|s| s.parent_element()) {
            for f in self.forwarding.take_retired_element(&element) {
                crate::teardown::remove_element(self.pipeline.upcast_ref(), f.element());
            }
        }
    }

    /// Stops forwarding a track: branches let go first, then its subscriber links, then its
    /// forwarder is removed (or retired while the publisher pad is busy). With
    /// `publisher_leaving` the forwarder is returned instead: the publisher's bin goes to NULL
    /// first, then the caller removes it.
    pub(super) fn unpublish(
        &mut self,
        track: &TrackId,
        publisher_leaving: bool,
    ) -> Option<crate::forwarder::Forwarder> {
        {
            let (mut port, recordings, taps) = self.port();
            recordings.track_gone(track, &mut port);
            taps.track_gone(track, &mut port);
        }
        let gone = self.forwarding.take(track)?;
        for (sub, mline) in &gone.subscribers {
            let link = match self
                .peers
                .get_mut(sub)
                .and_then(|p| p.mlines.get_mut(mline))
            {
                Some(MLine::Subscribe(slot)) => slot.link.take(),
                _ => None,
            };
            if let Some(link) = link {
                gone.fwd.release_src(&link.fwd_pad);
            }
        }
        let publisher = self.peers.get(&gone.publisher);
        if let Some(p) = publisher {
            p.pb.shared
                .publish
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .slots
                .remove(&gone.mline);
        }
        if publisher_leaving {
            return Some(gone.fwd);
        }
        let detached = match (gone.fwd.sink_pad().peer(), publisher) {
            (None, _) => true,
            (Some(ghost), Some(p)) => crate::teardown::divert_to_discard(&p.pb.bin, &ghost),
            (Some(_), None) => false,
        };
        if detached {
            crate::teardown::remove_element(self.pipeline.upcast_ref(), gone.fwd.element());
        } else {
            // The publisher's pad is busy or gone strange: keep the forwarder as its sink until
            // the pad is removed or the publisher leaves.
            tracing::warn!(%track, "publisher pad not idle: forwarder retired, not removed");
            self.forwarding
                .retire(track.clone(), gone.publisher, gone.fwd);
        }
        None
    }

    /// Removes a peer in the safe order (docs/webrtcbin.md §4.1 "Safe removal order").
    pub(super) fn remove_peer(&mut self, peer: &PeerId) {
        let Some(p) = self.peers.get_mut(peer) else {
            return;
        };
        // 1+2: release every forwarder pad that feeds this peer.
        let links: Vec<(u32, crate::forwarding::Link)> = p
            .mlines
            .iter_mut()
            .filter_map(|(idx, m)| match m {
                MLine::Subscribe(slot) => slot.link.take().map(|l| (*idx, l)),
                _ => None,
            })
            .collect();
        for (mline, link) in links {
            self.forwarding.unlink((peer, mline), link);
        }
        // Its own tracks: release their subscribers' pads; forwarders go after the bin.
        let own = self.forwarding.published_by(peer);
        let mut fwds: Vec<_> = own.iter().filter_map(|t| self.unpublish(t, true)).collect();
        fwds.extend(self.forwarding.take_retired_of(peer));
        let Some(mut p) = self.peers.remove(peer) else {
            return;
        };
        p.pb.disconnect();
        self.nacks.retire(&p.pb.bin);
        // 3: the webrtcbin to NULL flushes its sink pads and stops its streaming threads.
        if p.pb.bin.set_state(gst::State::Null).is_err() {
            tracing::warn!(%peer, "peer bin refused NULL");
        }
        // 4: forwarders of its tracks.
        for f in fwds {
            crate::teardown::remove_element(self.pipeline.upcast_ref(), f.element());
        }
        // 5: webrtcbin sink pads, the bin.
        for m in p.mlines.values() {
            if let MLine::Subscribe(slot) = m {
                p.pb.webrtc.release_request_pad(&slot.sink);
            }
        }
        if self.pipeline.remove(&p.pb.bin).is_err() {
            tracing::warn!(%peer, "peer bin was not in the pipeline");
        }
        self.timers.forget_peer(peer);
        tracing::debug!(%peer, "peer removed");
    }

    pub(super) fn shutdown(&mut self) {
        {
            let (mut port, recordings, taps) = self.port();
            recordings.shutdown(&mut port);
            taps.shutdown(&mut port);
        }
        let peers: Vec<PeerId> = self.peers.keys().cloned().collect();
        for peer in peers {
            self.remove_peer(&peer);
        }
        for f in self.forwarding.drain_retired() {
            crate::teardown::remove_element(self.pipeline.upcast_ref(), f.element());
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
