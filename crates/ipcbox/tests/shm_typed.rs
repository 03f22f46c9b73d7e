//! Typed shared values and arrays across real processes: locked and atomic updates, layout
//! checks on open, corrupted headers, bounds, and a lock holder killed while holding it.

// One test forks (the anonymous value shared with a forked child).
#![allow(unsafe_code)]

mod util;

use std::io;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ipcbox::shm::{self, Array, LockError, TypedOptions, Value};
use ipcbox::sync::{Barrier, Event};
use ipcbox::CreationMode;
use util::{role_arg, role_command, unique_name, watchdog};

const LIMIT: Duration = Duration::from_secs(60);
const PROCS: u64 = 4;
const ROUNDS: u64 = 10_000;

// ---------------------------------------------------------------------------------------------
// helpers

/// A child process killed (and reaped) on drop unless waited for.
struct Proc(Option<Child>);

impl Proc {
    fn role(test_fn: &str, arg: &str) -> Proc {
        let mut cmd: Command = role_command(test_fn, test_fn, arg);
        cmd.stdout(Stdio::null());
        Proc(Some(cmd.spawn().expect("spawn child")))
    }

    fn wait_success(mut self, what: &str) {
        let status = self.0.take().expect("child").wait().expect("wait child");
        assert!(status.success(), "{what} failed: {status}");
    }

    fn kill(mut self) {
        let mut child = self.0.take().expect("child");
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn shm_gone(name: &str) -> bool {
    !Path::new("/dev/shm")
        .join(name.trim_start_matches('/'))
        .exists()
}

/// Asserts that `err` is `InvalidData` and its message contains every one of `parts`.
fn assert_layout_error(err: io::Error, parts: &[&str]) {
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    let msg = err.to_string();
    for part in parts {
        assert!(msg.contains(part), "{msg:?} does not mention {part:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// updates from several processes

#[test]
fn role_value_locked_adder() {
    let Some(name) = role_arg("role_value_locked_adder") else {
        return;
    };
    let value = Value::<u64>::open(&name).unwrap();
    // All start together, so that the updates really interleave.
    Barrier::open(&format!("{name}-go"))
        .unwrap()
        .wait()
        .unwrap();
    for _ in 0..ROUNDS {
        let mut guard = value.lock().unwrap();
        // Read, yield, write: without the lock, updates of other processes would be lost.
        let v = guard.get();
        std::hint::spin_loop();
        guard.set(v + 1);
    }
}

#[test]
fn value_incremented_under_the_lock_by_4_processes_ends_at_4n() {
    let _dog = watchdog("locked adders", LIMIT);
    let name = unique_name("typed-locked");
    let value = Value::create(&name, 0u64).unwrap();
    let go = Barrier::create(&format!("{name}-go"), PROCS as u32).unwrap();
    let children: Vec<Proc> = (0..PROCS)
        .map(|_| Proc::role("role_value_locked_adder", &name))
        .collect();
    for child in children {
        child.wait_success("locked adder");
    }
    assert_eq!(value.get(), PROCS * ROUNDS);
    drop((value, go));
    assert!(shm_gone(&name));
}

#[test]
fn role_value_atomic_adder() {
    let Some(name) = role_arg("role_value_atomic_adder") else {
        return;
    };
    let value = Value::<u64>::open(&name).unwrap();
    // All start together, so that the updates really interleave.
    Barrier::open(&format!("{name}-go"))
        .unwrap()
        .wait()
        .unwrap();
    for _ in 0..ROUNDS * 10 {
        value.fetch_add(1);
    }
}

#[test]
fn value_fetch_add_by_4_processes_ends_at_4n() {
    let _dog = watchdog("atomic adders", LIMIT);
    let name = unique_name("typed-atomic");
    let value = Value::create(&name, 0u64).unwrap();
    let go = Barrier::create(&format!("{name}-go"), PROCS as u32).unwrap();
    let children: Vec<Proc> = (0..PROCS)
        .map(|_| Proc::role("role_value_atomic_adder", &name))
        .collect();
    for child in children {
        child.wait_success("atomic adder");
    }
    assert_eq!(value.get(), PROCS * ROUNDS * 10);
    drop((value, go));
    assert!(shm_gone(&name));
}

#[test]
fn role_array_writer() {
    let Some(name) = role_arg("role_array_writer") else {
        return;
    };
    let array = Array::<i32>::open(&name).unwrap();
    let data: Vec<i32> = (0..array.len() as i32).map(|i| i * -3).collect();
    array.lock().unwrap().write_from(&data).unwrap();
    array.set(0, 12345).unwrap();
}

#[test]
fn array_written_by_a_child_is_read_by_the_parent() {
    let _dog = watchdog("array writer", LIMIT);
    let name = unique_name("typed-array");
    let array = Array::<i32>::create(&name, 1000).unwrap();
    assert_eq!(array.len(), 1000);
    assert!(array.to_vec().iter().all(|&x| x == 0));
    Proc::role("role_array_writer", &name).wait_success("array writer");
    let mut got = vec![0; 1000];
    array.lock().unwrap().read_into(&mut got).unwrap();
    assert_eq!(got[0], 12345);
    for (i, &x) in got.iter().enumerate().skip(1) {
        assert_eq!(x, i as i32 * -3, "element {i}");
    }
    drop(array);
    assert!(shm_gone(&name));
}

#[test]
fn anonymous_value_and_array_are_shared_with_a_forked_child() {
    let _dog = watchdog("fork", LIMIT);
    // Two counters: atomic adds do not take the lock, so they must not mix with locked
    // read-modify-writes of the same value.
    let value = Value::anonymous(0u32).unwrap();
    let atomic = Value::anonymous(0u32).unwrap();
    let array = Array::anonymous(&[0u8; 64]).unwrap();
    // SAFETY: the child only does atomic operations and pthread mutex calls on memory mapped
    // before the fork (no allocation: the guard and error paths allocate nothing on success),
    // then `_exit`s without running destructors.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
    if pid == 0 {
        let mut ok = true;
        for _ in 0..1000 {
            atomic.fetch_add(1);
            match value.lock() {
                Ok(mut g) => {
                    let v = g.get();
                    g.set(v + 1);
                }
                Err(_) => ok = false,
            }
        }
        ok &= array.set(63, 7).is_ok();
        // SAFETY: ends the child immediately, as fork's contract asks.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    for _ in 0..1000 {
        atomic.fetch_add(1);
        value.lock().unwrap().update(|v| v + 1);
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is valid for writes.
    let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(ret, pid, "waitpid: {}", io::Error::last_os_error());
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert_eq!(value.get(), 2000);
    assert_eq!(atomic.get(), 2000);
    assert_eq!(array.get(63).unwrap(), 7);
}

// ---------------------------------------------------------------------------------------------
// layout checks

#[test]
fn opening_with_the_wrong_type_fails_naming_expected_and_found() {
    let name = unique_name("typed-wrong");
    let value = Value::create(&name, 7u32).unwrap();

    let err = Value::<u64>::open(&name).unwrap_err();
    assert_layout_error(
        err,
        &[&name, "holds u32 (4 bytes)", "opened as u64 (8 bytes)"],
    );
    // Same size, other type: the tag tells them apart.
    let err = Value::<f32>::open(&name).unwrap_err();
    assert_layout_error(err, &["holds u32 (4 bytes)", "opened as f32 (4 bytes)"]);
    let err = Value::<i32>::open(&name).unwrap_err();
    assert_layout_error(err, &["holds u32", "opened as i32"]);
    // A value is not an array.
    let err = Array::<u32>::open(&name).unwrap_err();
    assert_layout_error(err, &["holds a value", "opened as an array"]);
    // OpenOrCreate on an existing value of a smaller type says the same.
    let err = TypedOptions::new()
        .mode(CreationMode::OpenOrCreate)
        .open_value(&name, 0u64)
        .unwrap_err();
    assert_layout_error(err, &["holds u32 (4 bytes)", "opened as u64 (8 bytes)"]);
    // The right type opens and sees the value.
    assert_eq!(Value::<u32>::open(&name).unwrap().get(), 7);
    drop(value);
    assert!(shm_gone(&name));

    let name = unique_name("typed-wrong-array");
    let array = Array::from_slice(&name, &[1i16, 2, 3]).unwrap();
    let err = Value::<i16>::open(&name).unwrap_err();
    assert_layout_error(err, &["holds an array", "opened as a value"]);
    let err = Array::<u16>::open(&name).unwrap_err();
    assert_layout_error(err, &["holds i16 (2 bytes)", "opened as u16 (2 bytes)"]);
    let err = TypedOptions::new()
        .mode(CreationMode::OpenOrCreate)
        .open_array::<i16>(&name, 4)
        .unwrap_err();
    assert_layout_error(err, &["holds 3 elements, expected 4"]);
    assert_eq!(Array::<i16>::open(&name).unwrap().to_vec(), [1, 2, 3]);
    drop(array);
    assert!(shm_gone(&name));
}

/// Creates a `u64` value `name` holding 99, and a raw segment handle on the same memory.
fn value_and_raw(name: &str) -> (Value<u64>, shm::Segment) {
    let value = Value::create(name, 99u64).unwrap();
    let raw = shm::Segment::open(name).unwrap();
    (value, raw)
}

#[test]
fn a_corrupted_header_fails_open_cleanly() {
    let name = unique_name("typed-corrupt");
    let (value, raw) = value_and_raw(&name);
    let mut header = [0u8; 48];
    raw.read_at(0, &mut header).unwrap();
    let restore = || raw.write_at(0, &header).unwrap();

    // Layout: magic, version, kind, element tag, element size, data offset (u32 each),
    // then length and total size (u64 each).
    let newer = shm::LAYOUT_VERSION + 1;
    raw.write_at(4, &newer.to_ne_bytes()).unwrap();
    let err = Value::<u64>::open(&name).unwrap_err();
    let expected = format!("layout version {newer}, expected {}", shm::LAYOUT_VERSION);
    assert_layout_error(err, &[&expected]);
    restore();

    raw.write_at(0, b"XXXX").unwrap();
    assert_layout_error(
        Value::<u64>::open(&name).unwrap_err(),
        &["not an ipcbox typed segment", "magic"],
    );
    restore();

    raw.write_at(8, &77u32.to_ne_bytes()).unwrap();
    assert_layout_error(
        Value::<u64>::open(&name).unwrap_err(),
        &["an unknown kind (77)"],
    );
    restore();

    raw.write_at(12, &200u32.to_ne_bytes()).unwrap();
    assert_layout_error(
        Value::<u64>::open(&name).unwrap_err(),
        &[
            "unknown element type 200 (8 bytes)",
            "opened as u64 (8 bytes)",
        ],
    );
    restore();

    raw.write_at(16, &2u32.to_ne_bytes()).unwrap();
    assert_layout_error(
        Value::<u64>::open(&name).unwrap_err(),
        &["holds u64 (2 bytes)"],
    );
    restore();

    raw.write_at(20, &0u32.to_ne_bytes()).unwrap();
    assert_layout_error(
        Value::<u64>::open(&name).unwrap_err(),
        &["data offset 0, expected 128"],
    );
    restore();

    for huge in [u64::MAX, 1 << 40, 0] {
        raw.write_at(24, &huge.to_ne_bytes()).unwrap();
        assert_layout_error(
            Value::<u64>::open(&name).unwrap_err(),
            &[&format!("the header says {huge} elements")],
        );
        restore();
    }
    raw.write_at(32, &1u64.to_ne_bytes()).unwrap();
    assert_layout_error(Value::<u64>::open(&name).unwrap_err(), &["in 1 bytes"]);
    restore();

    // Restored, it opens again.
    assert_eq!(Value::<u64>::open(&name).unwrap().get(), 99);

    // A peer scribbling over the header after open changes nothing for open handles: the
    // layout was checked once and is not read again.
    let opened = Value::<u64>::open(&name).unwrap();
    raw.write_at(0, &[0xff; 128]).unwrap();
    opened.set(5);
    assert_eq!(value.fetch_add(1), 5);
    assert_eq!(opened.get(), 6);
    // Scribbling over the data only changes the value.
    raw.write_at(128, &[0xab; 8]).unwrap();
    assert_eq!(opened.get(), u64::from_ne_bytes([0xab; 8]));
    assert!(Value::<u64>::open(&name).is_err());
    drop((value, opened, raw));
    assert!(shm_gone(&name));
}

#[test]
fn segments_that_are_not_typed_values_fail_open_cleanly() {
    let name = unique_name("typed-foreign");
    let seg = shm::Segment::create(&name, 16).unwrap();
    assert_layout_error(
        Value::<u8>::open(&name).unwrap_err(),
        &["the segment has 16 bytes", "128-byte typed header"],
    );
    drop(seg);
    let seg = shm::Segment::create(&name, 4096).unwrap();
    assert_layout_error(
        Value::<u8>::open(&name).unwrap_err(),
        &["no magic number: not initialised (yet), or not an ipcbox typed segment"],
    );
    seg.write_at(0, b"hello from somebody else").unwrap();
    assert_layout_error(
        Array::<f64>::open(&name).unwrap_err(),
        &["not an ipcbox typed segment"],
    );
    drop(seg);
    assert!(shm_gone(&name));
    let err = Value::<u8>::open(&name).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
}

#[test]
fn indexes_and_lengths_are_checked() {
    let name = unique_name("typed-bounds");
    let array = Array::<u64>::create(&name, 5).unwrap();
    let msg = |e: io::Error| {
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        e.to_string()
    };
    assert!(msg(array.get(5).unwrap_err()).contains("index 5 out of range for length 5"));
    assert!(msg(array.set(usize::MAX, 1).unwrap_err()).contains("length 5"));
    assert!(msg(array.fetch_add(9, 1).unwrap_err()).contains("index 9"));
    let mut small = [0u64; 4];
    assert!(msg(array.read_into(&mut small).unwrap_err()).contains("4 elements"));
    assert!(msg(array.write_from(&[1; 6]).unwrap_err()).contains("length 5"));
    {
        let mut guard = array.lock().unwrap();
        assert!(msg(guard.get(5).unwrap_err()).contains("index 5"));
        assert!(msg(guard.set(7, 0).unwrap_err()).contains("index 7"));
        guard.set(4, 44).unwrap();
    }
    assert_eq!(array.get(4).unwrap(), 44);
    let err = Array::<u8>::create(&unique_name("typed-empty"), 0).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
    drop(array);
    assert!(shm_gone(&name));
}

// ---------------------------------------------------------------------------------------------
// owner died

#[test]
fn role_value_holder() {
    let Some(name) = role_arg("role_value_holder") else {
        return;
    };
    let value = Value::<i64>::open(&name).unwrap();
    let ready = Event::open(&format!("{name}-ready")).unwrap();
    let mut guard = value.lock().unwrap();
    guard.set(-42); // half-way through an update when killed
    ready.set();
    loop {
        std::thread::park();
    }
}

#[test]
fn a_holder_killed_with_the_lock_makes_the_next_locker_see_owner_died() {
    let _dog = watchdog("owner died", LIMIT);
    let name = unique_name("typed-died");
    let value = Value::create(&name, 1i64).unwrap();
    let ready = Event::create(&format!("{name}-ready")).unwrap();
    let holder = Proc::role("role_value_holder", &name);
    // Bounded below the watchdog, so a holder that never gets there fails the test with its
    // guards run (child killed, names removed) instead of aborting the whole binary.
    assert!(
        ready.wait_timeout(LIMIT / 2).unwrap(),
        "the holder never took the lock"
    );
    assert!(matches!(value.try_lock(), Ok(None)));
    assert!(matches!(
        value.lock_timeout(Duration::from_millis(20)),
        Ok(None)
    ));
    holder.kill();
    let mut guard = match value.lock() {
        Err(LockError::OwnerDied(guard)) => guard,
        other => panic!("expected OwnerDied, got {other:?}"),
    };
    assert_eq!(guard.get(), -42, "the dead holder's write is visible");
    guard.set(1); // repair
    guard.mark_consistent().unwrap();
    drop(guard);
    let mut guard = value.lock().unwrap();
    assert_eq!(guard.update(|v| v + 1), 2);
    drop(guard);
    drop((value, ready));
    assert!(shm_gone(&name));
    assert!(shm_gone(&format!("{name}-ready")));
}

#[test]
fn an_unrepaired_owner_death_makes_the_lock_not_recoverable() {
    let _dog = watchdog("not recoverable", LIMIT);
    let name = unique_name("typed-unrec");
    let array = Array::<u8>::create(&name, 3).unwrap();
    let ready = Event::create(&format!("{name}-ready")).unwrap();
    let holder = Proc::role("role_array_holder", &name);
    // Bounded below the watchdog, so a holder that never gets there fails the test with its
    // guards run (child killed, names removed) instead of aborting the whole binary.
    assert!(
        ready.wait_timeout(LIMIT / 2).unwrap(),
        "the holder never took the lock"
    );
    assert!(matches!(array.try_lock(), Ok(None)));
    assert!(matches!(
        array.lock_timeout(Duration::from_millis(20)),
        Ok(None)
    ));
    holder.kill();
    let err = array.lock().unwrap_err();
    assert!(err.is_owner_died());
    drop(err); // dropped without mark_consistent
    assert!(matches!(array.lock(), Err(LockError::NotRecoverable)));
    // Lock-free access still works.
    array.set(0, 1).unwrap();
    assert_eq!(array.get(0).unwrap(), 1);
    drop((array, ready));
    assert!(shm_gone(&name));
}

#[test]
fn role_array_holder() {
    let Some(name) = role_arg("role_array_holder") else {
        return;
    };
    let array = Array::<u8>::open(&name).unwrap();
    let ready = Event::open(&format!("{name}-ready")).unwrap();
    let _guard = array.lock().unwrap();
    ready.set();
    loop {
        std::thread::park();
    }
}

// ---------------------------------------------------------------------------------------------
// a peer in another language

/// Python's `multiprocessing.shared_memory` reads the header and the value of an ipcbox value
/// (the layout is plain: 48 header bytes, the lock at 64, the data at 128) and updates it.
#[test]
fn python_reads_the_header_and_updates_the_value() {
    let _dog = watchdog("python peer", LIMIT);
    let name = unique_name("typed-py");
    let value = Value::create(&name, 41u64).unwrap();
    let out = util::python::python(&format!(
        r#"
import struct
from multiprocessing import shared_memory, resource_tracker
seg = shared_memory.SharedMemory(name={name:?})
# CPython's resource tracker would unlink the segment when this process exits, though it only
# attached to it (README, "CPython's resource tracker"). Before 3.13 the workaround is this;
# from 3.13, SharedMemory(name=..., track=False).
resource_tracker.unregister(seg._name, "shared_memory")
magic, version, kind, tag, size, offset, length, total = struct.unpack_from("=4s5IQQ", seg.buf, 0)
(v,) = struct.unpack_from("=Q", seg.buf, offset)
print(magic.decode(), version, kind, tag, size, offset, length, total, v)
struct.pack_into("=Q", seg.buf, offset, v + 1000)
del v
seg.close()
"#
    ))
    .stderr(Stdio::inherit())
    .output()
    .expect("run python3");
    assert!(out.status.success(), "python failed: {}", out.status);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "IPBT 3 1 4 8 128 1 136 41"
    );
    assert_eq!(value.get(), 1041);
    drop(value);
    assert!(shm_gone(&name));
}
