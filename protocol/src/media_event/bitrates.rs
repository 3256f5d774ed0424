//! `sdpOffer.trackIdToTrackBitrates`: what each of the client's tracks may send, in bit/s.
//!
//! membrane-webrtc-js 0.5.3 sends, per local track, a number for a single-encoding track
//! (`maxBitrate`, else 50 000 for audio and 2 500 000 for video) and `{rid: number}` for a
//! simulcast track (each encoding's `maxBitrate`, else l/m/h 150 000 / 500 000 / 2 500 000).
//! The map only informs the server's layer choices, so it is read leniently: a malformed entry
//! is dropped, never a reason to refuse the offer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::sdp::valid_rid;

/// Most entries read from one `trackIdToTrackBitrates` (the rest are dropped).
pub const MAX_BITRATE_TRACKS: usize = 64;

/// Most layers read for one simulcast track (the rest are dropped).
pub const MAX_BITRATE_LAYERS: usize = 8;

/// Longest track id accepted in client events, in bytes.
pub const MAX_TRACK_ID_BYTES: usize = 256;

/// One track's entry of `trackIdToTrackBitrates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TrackBitrates {
    /// A single-encoding track: its bit/s.
    Single(u64),
    /// A simulcast track: RID → bit/s of each layer.
    Layers(BTreeMap<String, u64>),
}

/// A positive bit rate from a JSON number (fractions rounded); `None` for anything else.
fn rate(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return (n > 0).then_some(n);
    }
    let f = v.as_f64()?;
    // `as` saturates at u64::MAX; NaN and negatives are refused first.
    (f.is_finite() && f >= 0.5).then(|| f.round() as u64)
}

/// The entry of one track, or `None` when nothing of it is usable.
fn entry(v: &Value) -> Option<TrackBitrates> {
    match v {
        Value::Object(layers) => {
            let layers: BTreeMap<String, u64> = layers
                .iter()
                .filter(|(rid, _)| valid_rid(rid))
                .filter_map(|(rid, v)| Some((rid.clone(), rate(v)?)))
                .take(MAX_BITRATE_LAYERS)
                .collect();
            (!layers.is_empty()).then_some(TrackBitrates::Layers(layers))
        }
        v => rate(v).map(TrackBitrates::Single),
    }
}

/// Reads `trackIdToTrackBitrates` leniently: absent, `null` or not an object reads as empty;
/// entries with a track id over [`MAX_TRACK_ID_BYTES`], a value that is neither a positive
/// number nor an object of them, or beyond [`MAX_BITRATE_TRACKS`] are dropped; so are layers
/// whose RID is not [`valid_rid`] or whose value is not a positive number.
pub(super) fn lenient<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, TrackBitrates>, D::Error> {
    let Some(Value::Object(map)) = Option::<Value>::deserialize(d)? else {
        return Ok(BTreeMap::new());
    };
    Ok(map
        .iter()
        .filter(|(track, _)| track.len() <= MAX_TRACK_ID_BYTES)
        .filter_map(|(track, v)| Some((track.clone(), entry(v)?)))
        .take(MAX_BITRATE_TRACKS)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> BTreeMap<String, TrackBitrates> {
        lenient(v).unwrap()
    }

    #[test]
    fn reads_numbers_and_layer_objects() {
        let m = read(json!({"a:1": 50000, "a:2": {"l": 150000, "m": 500000.4, "h": 2.5e6}}));
        assert_eq!(m["a:1"], TrackBitrates::Single(50_000));
        assert_eq!(
            m["a:2"],
            TrackBitrates::Layers(BTreeMap::from([
                ("h".into(), 2_500_000),
                ("l".into(), 150_000),
                ("m".into(), 500_000),
            ]))
        );
        assert_eq!(serde_json::to_value(&m["a:1"]).unwrap(), json!(50000));
        assert_eq!(
            serde_json::to_value(&m["a:2"]).unwrap(),
            json!({"h": 2500000, "l": 150000, "m": 500000})
        );
    }

    #[test]
    fn drops_what_it_cannot_use() {
        for nothing in [json!(null), json!("x"), json!([1, 2]), json!(5)] {
            assert!(read(nothing).is_empty());
        }
        let long = "t".repeat(MAX_TRACK_ID_BYTES + 1);
        let m = read(json!({
            "zero": 0, "negative": -5, "text": "1000", "null": null, "list": [1],
            "nan-ish": 0.2, "empty": {}, "bad-layers": {"l": "x", "m": -1, "bad rid": 5},
            "some-layers": {"l": 100, "m": null, "": 7},
            "huge": 1e300,
            long: 5,
        }));
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            vec![
                ("huge".to_string(), TrackBitrates::Single(u64::MAX)),
                (
                    "some-layers".to_string(),
                    TrackBitrates::Layers(BTreeMap::from([("l".into(), 100)]))
                ),
            ]
        );
    }

    #[test]
    fn caps_the_number_of_entries() {
        let many: serde_json::Map<String, Value> = (0..MAX_BITRATE_TRACKS + 10)
            .map(|i| (format!("t{i:03}"), json!(1000)))
            .collect();
        assert_eq!(read(Value::Object(many)).len(), MAX_BITRATE_TRACKS);
        let layers: serde_json::Map<String, Value> = (0..MAX_BITRATE_LAYERS + 3)
            .map(|i| (format!("r{i:02}"), json!(1000)))
            .collect();
        match &read(json!({ "t": layers }))["t"] {
            TrackBitrates::Layers(l) => assert_eq!(l.len(), MAX_BITRATE_LAYERS),
            other => panic!("{other:?}"),
        }
    }
}
