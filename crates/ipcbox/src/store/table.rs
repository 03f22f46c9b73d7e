//! The object table, read and updated under the metadata lock.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

use super::handle::{Store, StoreFull};
use super::id::ObjectId;
use super::layout::{
    Geometry, RawEntry, RawHeader, ALIGN, CREATING, DELETING, FLAG_EVICT, FREE, HOLDERS, SEALED,
};
use crate::liveness::{self, Liveness};
use crate::pid_lock::PidLock;

/// A table entry as read (and checked) under the lock.
#[derive(Debug, Clone, Copy)]
pub(super) struct Snap {
    pub(super) state: u32,
    pub(super) creator: u32,
    pub(super) id: ObjectId,
    pub(super) generation: u32,
    pub(super) offset: usize,
    pub(super) alloc_len: usize,
    pub(super) size: usize,
    pub(super) sealed_at: u64,
}

/// What [`Locked::scan`] found.
struct Scan {
    live: Vec<(usize, Snap)>,
    found: Option<(usize, Snap)>,
    slot: Option<usize>,
}
pub(super) fn corrupt(name: &str, what: impl fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("object store {name} is corrupted: {what}"),
    )
}

/// The metadata lock held by this thread; unlocks on drop.
pub(super) struct Locked<'a> {
    pub(super) store: &'a Store,
    pub(super) header: &'a RawHeader,
    pub(super) table: &'a [RawEntry],
    pub(super) me: u32,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        PidLock::new(&self.header.lock).unlock();
    }
}

// Every update of an entry is ordered so that a process killed between any two stores leaves
// a consistent table: the fields first, the state word last (release), and a holder record's
// count is cleared before its pid is written.
impl Locked<'_> {
    fn name(&self) -> &str {
        &self.store.inner.name
    }

    fn geo(&self) -> &Geometry {
        &self.store.inner.geo
    }

    fn corrupt(&self, what: impl fmt::Display) -> io::Error {
        corrupt(self.name(), what)
    }

    pub(super) fn check_header(&self) -> io::Result<()> {
        match Geometry::read(self.header, self.store.inner.maps.rw.len()) {
            Ok(geo) if geo == *self.geo() => Ok(()),
            Ok(_) => Err(self.corrupt("its header's geometry changed")),
            Err(why) => Err(self.corrupt(format_args!("header: {why}"))),
        }
    }

    fn entry(&self, i: usize) -> io::Result<&RawEntry> {
        self.table
            .get(i)
            .ok_or_else(|| self.corrupt(format_args!("table entry {i} outside the table")))
    }

    /// Reads entry `i`; `None` if free. Checks the state and, for used entries, the
    /// allocation.
    fn snap(&self, i: usize) -> io::Result<Option<Snap>> {
        let e = self.entry(i)?;
        let state = e.state.load(Acquire);
        if state == FREE {
            return Ok(None);
        }
        let mut w = [0; 5];
        for (k, word) in w.iter_mut().enumerate() {
            *word = e.id[k].load(Relaxed);
        }
        let id = ObjectId::from_words(w);
        if state > DELETING {
            return Err(self.corrupt(format_args!("table entry {i} has invalid state {state}")));
        }
        let (offset, alloc_len, size) = (
            e.offset.load(Relaxed),
            e.alloc_len.load(Relaxed),
            e.size.load(Relaxed),
        );
        let cap = self.geo().capacity as u64;
        let bad = if alloc_len == 0 || alloc_len % ALIGN as u64 != 0 || offset % ALIGN as u64 != 0 {
            Some("offset or length not a positive multiple of the alignment")
        } else if offset.checked_add(alloc_len).is_none_or(|end| end > cap) {
            Some("outside the data area")
        } else if size > alloc_len {
            Some("size larger than its allocation")
        } else {
            None
        };
        if let Some(why) = bad {
            return Err(self.corrupt(format_args!(
                "table entry {i} (object {id}): allocation at {offset} of {alloc_len} bytes, \
                 size {size}, in a data area of {cap} bytes: {why}"
            )));
        }
        Ok(Some(Snap {
            state,
            creator: e.creator.load(Relaxed),
            id,
            generation: e.generation.load(Relaxed),
            // All three are at most the capacity, a usize.
            offset: offset as usize,
            alloc_len: alloc_len as usize,
            size: size as usize,
            sealed_at: e.sealed_at.load(Relaxed),
        }))
    }

    /// Every used entry, checked, allocations not overlapping.
    pub(super) fn live(&self) -> io::Result<Vec<(usize, Snap)>> {
        let mut out = Vec::new();
        for (i, e) in self.table.iter().enumerate() {
            if e.state.load(Relaxed) != FREE {
                if let Some(s) = self.snap(i)? {
                    out.push((i, s));
                }
            }
        }
        Ok(out)
    }

    /// The free gaps `(offset, len)` of the data area between the allocations of `live`.
    pub(super) fn gaps(&self, live: &[(usize, Snap)]) -> io::Result<Vec<(usize, usize)>> {
        let mut allocs: Vec<(usize, usize, usize)> = live
            .iter()
            .map(|(i, s)| (s.offset, s.alloc_len, *i))
            .collect();
        allocs.sort_unstable();
        let mut gaps = Vec::new();
        let mut at = 0;
        let mut prev = None;
        for (offset, len, i) in allocs {
            if offset < at {
                return Err(self.corrupt(format_args!(
                    "allocations of table entries {} and {i} overlap",
                    prev.unwrap_or(i)
                )));
            }
            if offset > at {
                gaps.push((at, offset - at));
            }
            at = offset + len;
            prev = Some(i);
        }
        if at < self.geo().capacity {
            gaps.push((at, self.geo().capacity - at));
        }
        Ok(gaps)
    }

    /// The used entry with `id` that is creating or sealed.
    pub(super) fn find(&self, id: ObjectId) -> io::Result<Option<(usize, Snap)>> {
        let n = self.table.len();
        let home = id.home(n);
        let words = id.words();
        for i in (home..n).chain(0..home) {
            let e = &self.table[i];
            let state = e.state.load(Acquire);
            if state != CREATING && state != SEALED {
                continue;
            }
            if (0..5).all(|w| e.id[w].load(Relaxed) == words[w]) {
                if let Some(s) = self.snap(i)? {
                    return Ok(Some((i, s)));
                }
            }
        }
        Ok(None)
    }

    fn free(&self, i: usize) -> io::Result<()> {
        let e = self.entry(i)?;
        e.state.store(FREE, Release);
        for h in &e.holders {
            h.count.store(0, Relaxed);
            h.pid.store(0, Relaxed);
        }
        Ok(())
    }

    /// Total holds on entry `i`.
    pub(super) fn holds(&self, i: usize) -> u64 {
        self.entry(i).map_or(0, |e| {
            e.holders
                .iter()
                .filter(|h| h.pid.load(Relaxed) != 0)
                .map(|h| u64::from(h.count.load(Relaxed)))
                .sum()
        })
    }

    /// Drops the holder records of dead processes from entry `i`; `true` if holds remain.
    fn reap_holders(&self, i: usize, alive: &mut HashMap<u32, bool>) -> io::Result<bool> {
        let e = self.entry(i)?;
        let mut held = false;
        for h in &e.holders {
            let (pid, count) = (h.pid.load(Relaxed), h.count.load(Relaxed));
            if pid == 0 || count == 0 {
                continue;
            }
            let live = *alive
                .entry(pid)
                .or_insert_with(|| pid == self.me || may_live(pid));
            if live {
                held = true;
            } else {
                h.count.store(0, Relaxed);
                h.pid.store(0, Relaxed);
            }
        }
        Ok(held)
    }

    /// The reclaim pass; returns how many entries it freed.
    pub(super) fn reclaim(&self) -> io::Result<usize> {
        let mut alive = HashMap::new();
        let mut freed = 0;
        for (i, s) in self.live()? {
            let dead_creator = s.state == CREATING
                && !*alive
                    .entry(s.creator)
                    .or_insert_with(|| s.creator == self.me || may_live(s.creator));
            let held = self.reap_holders(i, &mut alive)?;
            if dead_creator || (s.state == DELETING && !held) {
                self.free(i)?;
                freed += 1;
            }
        }
        Ok(freed)
    }

    /// Frees entry `i` if its object is being created by a dead process; `true` if it did.
    fn reclaim_if_orphan(&self, i: usize, s: &Snap) -> io::Result<bool> {
        if s.state == CREATING && s.creator != self.me && !may_live(s.creator) {
            self.free(i)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// One pass over the table from `id`'s home entry: every used entry (checked), the
    /// creating or sealed entry with `id`, and the first free entry.
    fn scan(&self, id: ObjectId, home: usize) -> io::Result<Scan> {
        let n = self.table.len();
        let (mut live, mut found, mut slot) = (Vec::new(), None, None);
        for i in (home..n).chain(0..home) {
            if self.table[i].state.load(Acquire) == FREE {
                slot = slot.or(Some(i));
            } else if let Some(s) = self.snap(i)? {
                if s.id == id && (s.state == CREATING || s.state == SEALED) {
                    found = Some((i, s));
                }
                live.push((i, s));
            }
        }
        Ok(Scan { live, found, slot })
    }

    pub(super) fn create(
        &self,
        id: ObjectId,
        size: usize,
        needed: usize,
    ) -> io::Result<(usize, u32, usize)> {
        let home = id.home(self.table.len());
        let evict = self.header.flags.load(Relaxed) & FLAG_EVICT != 0;
        let mut reclaimed = false;
        loop {
            let Scan { live, found, slot } = self.scan(id, home)?;
            if let Some((i, s)) = found {
                if self.reclaim_if_orphan(i, &s)? {
                    continue;
                }
                let what = if s.state == SEALED {
                    "sealed"
                } else {
                    "being created"
                };
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("object store {}: object {id} exists ({what})", self.name()),
                ));
            }
            let gaps = self.gaps(&live)?;
            let gap = gaps.iter().find(|g| g.1 >= needed);
            if let (Some(i), Some(&(offset, _))) = (slot, gap) {
                let e = self.entry(i)?;
                // Everything first, the state last: a creator killed in between leaves a
                // free entry.
                for (w, word) in id.words().iter().enumerate() {
                    e.id[w].store(*word, Relaxed);
                }
                let generation = e.generation.load(Relaxed).wrapping_add(1);
                e.generation.store(generation, Relaxed);
                e.creator.store(self.me, Relaxed);
                e.offset.store(offset as u64, Relaxed);
                e.alloc_len.store(needed as u64, Relaxed);
                e.size.store(size as u64, Relaxed);
                e.sealed_at.store(0, Relaxed);
                for h in &e.holders {
                    h.count.store(0, Relaxed);
                    h.pid.store(0, Relaxed);
                }
                e.state.store(CREATING, Release);
                return Ok((i, generation, offset));
            }
            if !reclaimed {
                reclaimed = true;
                if self.reclaim()? > 0 {
                    continue;
                }
            }
            if evict {
                let mut alive = HashMap::new();
                let mut victim: Option<(usize, u64)> = None;
                for (i, s) in &live {
                    if s.state == SEALED
                        && victim.is_none_or(|v| s.sealed_at < v.1)
                        && !self.reap_holders(*i, &mut alive)?
                    {
                        victim = Some((*i, s.sealed_at));
                    }
                }
                if let Some((i, _)) = victim {
                    self.free(i)?;
                    continue;
                }
            }
            let full = StoreFull {
                requested: size,
                needed,
                free: gaps.iter().map(|g| g.1).sum(),
                largest_free: gaps.iter().map(|g| g.1).max().unwrap_or(0),
                capacity: self.geo().capacity,
                table_full: slot.is_none(),
            };
            return Err(io::Error::new(io::ErrorKind::StorageFull, full));
        }
    }

    /// Checks that entry `index` still holds the object this process is creating.
    fn own_creating(&self, index: usize, generation: u32, id: ObjectId) -> io::Result<&RawEntry> {
        let e = self.entry(index)?;
        let same = self.snap(index)?.is_some_and(|s| {
            s.state == CREATING && s.generation == generation && s.id == id && s.creator == self.me
        });
        if !same {
            return Err(self.corrupt(format_args!(
                "object {id} (table entry {index}) is no longer the one this process is creating"
            )));
        }
        Ok(e)
    }

    pub(super) fn seal(&self, index: usize, generation: u32, id: ObjectId) -> io::Result<()> {
        let e = self.own_creating(index, generation, id)?;
        let clock = self.header.clock.fetch_add(1, Relaxed).wrapping_add(1);
        e.sealed_at.store(clock, Relaxed);
        e.state.store(SEALED, Release);
        self.header.seal_seq.fetch_add(1, SeqCst);
        Ok(())
    }

    pub(super) fn abort(&self, index: usize, generation: u32, id: ObjectId) -> io::Result<()> {
        self.own_creating(index, generation, id)?;
        self.free(index)
    }

    /// Finds the sealed object `id` and records a hold by this process.
    pub(super) fn hold(&self, id: ObjectId) -> io::Result<Option<(usize, Snap)>> {
        let Some((i, s)) = self.find(id)? else {
            return Ok(None);
        };
        if s.state != SEALED {
            self.reclaim_if_orphan(i, &s)?;
            return Ok(None);
        }
        let e = self.entry(i)?;
        for attempt in 0..2 {
            if let Some(h) = e.holders.iter().find(|h| h.pid.load(Relaxed) == self.me) {
                let count = h.count.load(Relaxed);
                if count == u32::MAX {
                    break;
                }
                h.count.store(count + 1, Relaxed);
                return Ok(Some((i, s)));
            }
            if let Some(h) = e
                .holders
                .iter()
                .find(|h| h.pid.load(Relaxed) == 0 || h.count.load(Relaxed) == 0)
            {
                // Count first: a record with a pid and count 0 is free, so a process killed
                // in between leaves nothing held.
                h.count.store(0, Relaxed);
                h.pid.store(self.me, Relaxed);
                h.count.store(1, Relaxed);
                return Ok(Some((i, s)));
            }
            if attempt == 0 {
                self.reap_holders(i, &mut HashMap::new())?;
            }
        }
        Err(io::Error::other(format!(
            "object store {}: object {id} is held by {HOLDERS} live processes already",
            self.name()
        )))
    }

    pub(super) fn release(&self, index: usize, generation: u32, id: ObjectId) -> io::Result<()> {
        let Some(s) = self.snap(index)? else {
            return Err(self.corrupt(format_args!("held object {id} vanished from the table")));
        };
        if s.generation != generation || s.id != id || (s.state != SEALED && s.state != DELETING) {
            return Err(self.corrupt(format_args!(
                "held object {id} (table entry {index}) was replaced"
            )));
        }
        let e = self.entry(index)?;
        if let Some(h) = e.holders.iter().find(|h| h.pid.load(Relaxed) == self.me) {
            let count = h.count.load(Relaxed).saturating_sub(1);
            h.count.store(count, Relaxed);
            if count == 0 {
                h.pid.store(0, Relaxed);
            }
        }
        if s.state == DELETING && !self.reap_holders(index, &mut HashMap::new())? {
            self.free(index)?;
        }
        Ok(())
    }

    pub(super) fn delete(&self, id: ObjectId) -> io::Result<()> {
        let not_found = || {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("object store {}: no sealed object {id}", self.name()),
            )
        };
        let Some((i, s)) = self.find(id)? else {
            return Err(not_found());
        };
        if s.state == CREATING {
            if self.reclaim_if_orphan(i, &s)? {
                return Err(not_found());
            }
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "object store {}: object {id} is still being created (by pid {})",
                    self.name(),
                    s.creator
                ),
            ));
        }
        if self.reap_holders(i, &mut HashMap::new())? {
            self.entry(i)?.state.store(DELETING, Release);
        } else {
            self.free(i)?;
        }
        Ok(())
    }
}

/// Whether process `pid` may still live (the table records holders by PID alone, so a PID
/// taken by a new process counts as its holder until that one ends too).
fn may_live(pid: u32) -> bool {
    liveness::process(pid, |_| true) != Liveness::Dead
}
