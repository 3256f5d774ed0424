//! A small, pure summary of an SDP offer (m-lines, mids, directions, ICE ufrag).
