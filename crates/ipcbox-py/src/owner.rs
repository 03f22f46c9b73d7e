//! Which handle removes a named object: the one in the process that created it.

/// The creator to record in a handle: this process when it created the object, else none (0),
/// so that a handle that opened the object never removes its name.
pub(crate) fn creator(create: bool) -> u32 {
    if create {
        std::process::id()
    } else {
        0
    }
}

/// `impl Drop` for a handle with a `creator` field (from [`creator`]) and the ipcbox object in
/// `$field`: the object removes its name only in the process that created it, not in a copy
/// inherited by `fork` nor in a handle that opened it.
macro_rules! creator_only_drop {
    ($ty:ident, $field:ident) => {
        impl Drop for $ty {
            fn drop(&mut self) {
                if std::process::id() != self.creator {
                    self.$field.detach();
                }
            }
        }
    };
}

pub(crate) use creator_only_drop;
