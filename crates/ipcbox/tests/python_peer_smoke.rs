//! The interoperability tests install their Python peers themselves.

mod util;

#[test]
fn python_peers_are_installed_by_the_tests_themselves() {
    let out = util::python::output(&mut util::python::python(
        "import posix_ipc, sysv_ipc; print(posix_ipc.VERSION, sysv_ipc.VERSION)",
    ));
    assert_eq!(out, "1.3.2 1.2.0");
}
