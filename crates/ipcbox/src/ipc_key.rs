//! System V IPC keys, shared by semaphore sets, segments and message queues.

use std::fmt;
use std::io;
use std::path::Path;

use crate::error::{invalid_input, ResultExt};

/// A System V IPC key (`key_t`): the name under which unrelated processes find the same
/// semaphore set, segment or message queue. Python's `sysv_ipc` takes the same integer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IpcKey(i32);

impl IpcKey {
    /// `IPC_PRIVATE`: a new object reachable only through its identifier (or by inheritance).
    pub const PRIVATE: IpcKey = IpcKey(libc::IPC_PRIVATE);

    /// The key `raw` (any value; 0 is [`IpcKey::PRIVATE`]).
    pub const fn from_raw(raw: i32) -> IpcKey {
        IpcKey(raw)
    }

    /// The key as `key_t`.
    pub const fn as_raw(self) -> i32 {
        self.0
    }

    /// `ftok(path, proj_id)`: a key derived from an existing file's inode and device and the
    /// low 8 bits of `proj_id` (glibc's formula, so C and Python's `sysv_ipc.ftok` agree).
    ///
    /// # Errors
    ///
    /// When `path` cannot be `stat`ed; `InvalidInput` when `proj_id` is 0 (its low 8 bits
    /// must not be 0).
    pub fn ftok(path: impl AsRef<Path>, proj_id: u8) -> io::Result<IpcKey> {
        let path = path.as_ref();
        if proj_id == 0 {
            return Err(invalid_input("ftok project id must not be 0"));
        }
        let st = rustix::fs::stat(path).context_with(|| format!("ftok {}", path.display()))?;
        let key = (st.st_ino as u32 & 0xffff)
            | ((st.st_dev as u32 & 0xff) << 16)
            | (u32::from(proj_id) << 24);
        Ok(IpcKey(key as i32))
    }
}

impl fmt::Debug for IpcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IpcKey({:#010x})", self.0)
    }
}

impl fmt::Display for IpcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == IpcKey::PRIVATE {
            f.write_str("IPC_PRIVATE")
        } else {
            write!(f, "key {:#010x}", self.0)
        }
    }
}
