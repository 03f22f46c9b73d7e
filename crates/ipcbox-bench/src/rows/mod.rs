//! Every row `ipcbox-bench` knows, one module per mechanism.
//!
//! Adding a row: write its [`Link`](crate::row::Link) (or a whole
//! [`Row`]) in the mechanism's module, return it from that module's
//! `rows()`, and list the module once in [`all`]. Each ipcbox row should sit beside a `raw` row
//! in the same group, running the same loop on bare system calls.

mod async_rows;
pub mod cacheline;
mod common;
mod fifo;
mod fifo_raw;
mod iceoryx2;
mod ipc_channel;
mod mq;
mod nats;
mod pipe;
mod python;
mod queue;
mod queue_many;
mod shm;
mod socket;
mod store;
mod sync;
mod turns;

use crate::row::Row;

/// All rows, in table order; rows of a group stay together.
pub fn all() -> Vec<Box<dyn Row>> {
    [
        pipe::rows(),
        fifo::rows(),
        fifo_raw::rows(),
        socket::rows(),
        shm::rows(),
        sync::rows(),
        store::rows(),
        shm_queue_rows(),
        mq::rows(),
        nats::rows(),
        python::rows(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Group of the shared-memory message queues: the hardware floors (cache-line ping-pong for
/// latency, the same through one line per direction for a pair of one-way channels, a bare
/// spinning ring for throughput), ipcbox's channel and Queue, and the competitors on the same
/// messages.
const SHM_QUEUE: &str = "queue";

fn shm_queue_rows() -> Vec<Box<dyn Row>> {
    use crate::row::{forked, Info, Kind};
    let mut rows = vec![
        forked(
            cacheline::ping_pong_info("cacheline raw", SHM_QUEUE),
            cacheline::Turns::PING_PONG,
        ),
        // After "cacheline raw": the group's "vs raw" latency column uses the first raw row
        // that measures latency, and that stays the one-line ping-pong.
        forked(
            cacheline::line_pair_info("cacheline pair raw", SHM_QUEUE),
            cacheline::Turns::LINE_PAIR,
        ),
        forked(
            cacheline::spin_ring_info("shm ring raw", SHM_QUEUE),
            cacheline::SpinRing,
        ),
        // For scale: one copy of each message size, in one process. After the ring, which
        // stays the group's throughput baseline.
        store::memcpy_row(
            Info::new("queue memcpy raw", SHM_QUEUE, Kind::Raw)
                .sizes(&[4 << 10, 1 << 20, 64 << 20])
                .quick_max_message(1 << 20),
        ),
    ];
    rows.extend(queue::rows(SHM_QUEUE));
    rows.extend(async_rows::queue_rows(SHM_QUEUE));
    rows.extend(iceoryx2::rows(SHM_QUEUE));
    rows
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::row::Kind;

    #[test]
    fn names_are_unique_and_groups_contiguous() {
        let rows = all();
        let names: HashSet<_> = rows.iter().map(|r| r.info().name).collect();
        assert_eq!(names.len(), rows.len(), "duplicate row names");
        let mut seen = Vec::new();
        for row in &rows {
            let group = row.info().group;
            if seen.last() != Some(&group) {
                assert!(!seen.contains(&group), "group {group} is split");
                seen.push(group);
            }
        }
    }

    #[test]
    fn the_queue_groups_latency_baseline_is_the_one_line_ping_pong() {
        let rows = all();
        let first_raw_latency = rows
            .iter()
            .map(|r| r.info())
            .find(|i| i.group == SHM_QUEUE && i.kind == Kind::Raw && i.latency)
            .map(|i| i.name);
        assert_eq!(first_raw_latency, Some("cacheline raw"));
        assert!(rows.iter().any(|r| r.info().name == "cacheline pair raw"));
    }

    #[test]
    fn every_ipcbox_row_has_a_raw_row_in_its_group() {
        let rows = all();
        for row in rows.iter().filter(|r| r.info().kind == Kind::Ipcbox) {
            let group = row.info().group;
            assert!(
                rows.iter()
                    .any(|r| r.info().group == group && r.info().kind == Kind::Raw),
                "{} has no raw row",
                row.info().name
            );
        }
    }
}
