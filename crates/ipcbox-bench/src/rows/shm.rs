//! ipcbox's shared value against the hardware: two processes bounce a counter through one
//! `shm::Value<u64>` (the bench makes it odd, the peer even, each spinning on `get` until it is
//! its turn), beside the same loop on a bare `AtomicU64` ([`cacheline::Turns::PING_PONG`]).

use std::io;

use ipcbox::shm::Value;

use crate::row::{forked, Info, Kind, Link, Row};
use crate::rows::cacheline;
use crate::rows::turns::{spin_until, Echo, Peer, Turn};

const GROUP: &str = "shm value";

/// The shared-value rows.
pub fn rows() -> Vec<Box<dyn Row>> {
    vec![
        forked(
            Info::new("shm value", GROUP, Kind::Ipcbox).sizes(&[]),
            ValueApi,
        ),
        forked(
            cacheline::ping_pong_info("value cacheline raw", GROUP),
            cacheline::Turns::PING_PONG,
        ),
    ]
}

/// `ipcbox::shm::Value::<u64>::anonymous`, `set` and `get` (an atomic release store and
/// acquire load on the value's own cache line).
#[derive(Debug)]
struct ValueApi;

/// One side: the counter's value after our last hand-off or the peer's last we saw.
#[derive(Debug)]
struct ValueTurn {
    value: Value<u64>,
    seen: u64,
    peer: Peer,
}

impl Turn for ValueTurn {
    #[inline]
    fn give(&mut self) -> io::Result<()> {
        self.seen += 1;
        self.value.set(self.seen);
        Ok(())
    }

    #[inline]
    fn take(&mut self) -> io::Result<()> {
        let want = self.seen + 1;
        spin_until(self.peer, || Ok(self.value.get() == want))?;
        self.seen = want;
        Ok(())
    }
}

impl Link for ValueApi {
    type Shared = Value<u64>;
    type Parent = Echo<ValueTurn>;
    type Child = Echo<ValueTurn>;

    fn prepare(&self, _max_message: usize) -> io::Result<Value<u64>> {
        Value::anonymous(0)
    }

    fn parent(&self, value: Value<u64>) -> io::Result<Self::Parent> {
        Ok(Echo::new(ValueTurn {
            value,
            seen: 0,
            peer: Peer::Child,
        }))
    }

    fn child(&self, value: Value<u64>) -> io::Result<Self::Child> {
        Ok(Echo::new(ValueTurn {
            value,
            seen: 0,
            peer: Peer::of(true),
        }))
    }
}
