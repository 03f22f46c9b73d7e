"""The package as a user installs it: typed, with stubs for every public name."""

import ast
import importlib
import pathlib

import pytest

import ipcbox

PACKAGE = pathlib.Path(ipcbox.__file__).parent


def stubbed(stub):
    """The names a .pyi file declares."""
    names = set()
    for node in ast.parse(stub.read_text()).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
    return names


def test_the_package_is_typed_and_every_public_name_has_a_stub():
    assert (PACKAGE / "py.typed").exists()
    missing = set(ipcbox.__all__) - stubbed(PACKAGE / "__init__.pyi")
    assert not missing, f"no stub for {sorted(missing)}"


@pytest.mark.parametrize("stub", sorted(p.name for p in PACKAGE.glob("*.pyi")
                                        if p.name != "__init__.pyi"))
def test_every_public_name_of_a_module_has_a_stub(stub):
    module = importlib.import_module(f"ipcbox.{stub[:-4]}")
    missing = set(module.__all__) - stubbed(PACKAGE / stub)
    assert not missing, f"no stub in {stub} for {sorted(missing)}"


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
