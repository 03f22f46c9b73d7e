"""The package as a user installs it: typed, with stubs for every public name."""

import ast
import pathlib

import ipcbox

PACKAGE = pathlib.Path(ipcbox.__file__).parent


def test_the_package_is_typed_and_every_public_name_has_a_stub():
    assert (PACKAGE / "py.typed").exists()
    tree = ast.parse((PACKAGE / "__init__.pyi").read_text())
    stubbed = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            stubbed.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            stubbed.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.AnnAssign):
            stubbed.add(node.target.id)
    missing = set(ipcbox.__all__) - stubbed
    assert not missing, f"no stub for {sorted(missing)}"


def test_import_ipcbox_as_mp_runs_the_tutorials_producer_consumer():
    import ipcbox as mp

    def producer(q):
        for i in range(3):
            q.put(f"item {i}")
        q.put(None)

    q = mp.Queue()
    p = mp.get_context("fork").Process(target=producer, args=(q,))
    p.start()
    got = list(iter(q.get, None))
    p.join()
    assert got == ["item 0", "item 1", "item 2"]
