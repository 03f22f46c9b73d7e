//! The Python package's test suite, run by `cargo test`: `tests/run.sh` builds the extension
//! into a virtualenv under `target/` and runs pytest, whose output shows here.

use std::process::Command;

#[test]
fn python_suite_passes() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/run.sh");
    let status = Command::new("bash")
        .arg(script)
        .status()
        .expect("run tests/run.sh (is bash installed?)");
    assert!(status.success(), "{script} failed: {status}");
}
