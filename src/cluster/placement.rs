//! Where a new room goes: [`choose`], a pure function of the live nodes' records.

use super::record::NodeRecord;

/// How much more loaded than the least loaded node the local node may be and still take a new
/// room itself (in [`NodeRecord::load`] units: two peers). Keeping a room on the node its first
/// participant reached saves that participant the signalling relay.
pub const LOCAL_SLACK: u64 = 8;

/// The node a new room should be placed on: the least loaded live node that is not draining,
/// or `local` when it is within [`LOCAL_SLACK`] of that. `None` when every node drains.
pub fn choose<'a>(local: &str, nodes: &'a [NodeRecord]) -> Option<&'a NodeRecord> {
    let open = || nodes.iter().filter(|n| !n.draining);
    let least = open().min_by(|a, b| {
        a.load()
            .cmp(&b.load())
            .then(a.cpu_percent.total_cmp(&b.cpu_percent))
            .then(a.id.cmp(&b.id))
    })?;
    match open().find(|n| n.id == local) {
        Some(me) if me.load() <= least.load() + LOCAL_SLACK => Some(me),
        _ => Some(least),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, peers: u64, draining: bool) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            url: format!("ws://{id}"),
            instance: "i".into(),
            draining,
            rooms: vec![],
            peers,
            forwarded_pps: 0,
            cpu_percent: 0.0,
        }
    }

    #[test]
    fn local_when_close() {
        let nodes = [
            node("a", 2, false),
            node("b", 0, false),
            node("c", 1, false),
        ];
        assert_eq!(choose("a", &nodes).unwrap().id, "a");
    }

    #[test]
    fn least_loaded_when_local_is_busy() {
        let nodes = [
            node("a", 10, false),
            node("b", 3, false),
            node("c", 1, false),
        ];
        assert_eq!(choose("a", &nodes).unwrap().id, "c");
    }

    #[test]
    fn never_a_draining_node() {
        let nodes = [node("a", 0, true), node("b", 9, false), node("c", 0, true)];
        assert_eq!(choose("a", &nodes).unwrap().id, "b");
        let all = [node("a", 0, true)];
        assert!(choose("a", &all).is_none());
    }

    #[test]
    fn a_local_node_missing_from_the_list_is_not_chosen() {
        let nodes = [node("b", 5, false)];
        assert_eq!(choose("a", &nodes).unwrap().id, "b");
    }
}
