//! Names of POSIX IPC objects (`shm_open`, `sem_open`, `mq_open`): one set of rules, one
//! error wording.

use std::io;

use crate::error::invalid_input;

/// The longest name most POSIX objects take: `NAME_MAX`, one file name in `/dev/shm` or the
/// mqueue file system, without the leading `/`.
pub(crate) const NAME_MAX: usize = 255;

/// Checks a POSIX IPC name (`"name"` or `"/name"`) and returns it with its leading `/`.
///
/// `what` names the object type for the message ("shared-memory segment"); `max` is the
/// longest name it allows, without the slash.
///
/// # Errors
///
/// `InvalidInput` naming the object type, the name and what is wrong with it: empty, a `/`
/// after the optional leading one, `.` or `..`, a NUL byte, longer than `max`.
pub(crate) fn posix_name(name: &str, what: &str, max: usize) -> io::Result<String> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let problem = if bare.is_empty() {
        "it is empty".to_owned()
    } else if bare.contains('/') {
        "it contains '/' after the optional leading one".to_owned()
    } else if bare == "." || bare == ".." {
        "'.' and '..' are not names".to_owned()
    } else if bare.contains('\0') {
        "it contains a NUL byte".to_owned()
    } else if bare.len() > max {
        let which = if max == NAME_MAX { " (NAME_MAX)" } else { "" };
        format!(
            "it is {} bytes long without the leading '/', the limit is {max}{which}",
            bare.len()
        )
    } else {
        return Ok(format!("/{bare}"));
    };
    Err(invalid_input(format_args!(
        "invalid {what} name {name:?}: {problem}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert_eq!(posix_name("abc", "x", 10).unwrap(), "/abc");
        assert_eq!(posix_name("/abc", "x", 10).unwrap(), "/abc");
        assert_eq!(posix_name(&"x".repeat(10), "x", 10).unwrap().len(), 11);
        for bad in ["", "/", "a/b", "//a", ".", "/..", "a\0b", &"x".repeat(11)] {
            let err = posix_name(bad, "semaphore", 10).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.to_string().contains("semaphore name"), "{err}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        let err = posix_name(&"x".repeat(11), "x", 10).unwrap_err();
        assert!(err.to_string().contains("limit is 10"), "{err}");
        let err = posix_name(&"x".repeat(256), "x", NAME_MAX).unwrap_err();
        assert!(err.to_string().contains("limit is 255 (NAME_MAX)"), "{err}");
    }
}
