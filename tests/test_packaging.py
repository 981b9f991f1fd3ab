"""Packaging promises checked against the fastconv being tested (source tree
or installed wheel): py.typed and inline annotations on every public
function, a complete docstring each, a reference twin of every op with its
signature, one version, show_config's build report."""
import importlib.metadata
import inspect
import io
import os
import typing
import re
import subprocess
import sys

import pytest

import fastconv
import fastconv.functional

PKG = os.path.dirname(fastconv.__file__)
PUBLIC_FUNCTIONS = [name for name in fastconv.__all__ if callable(getattr(fastconv, name))]


def test_py_typed_is_shipped_and_no_stub_shadows_the_annotations():
    assert os.path.isfile(os.path.join(PKG, "py.typed")), "py.typed missing from the package"
    stubs = [os.path.join(root, f) for root, _, files in os.walk(PKG) for f in files
             if f.endswith(".pyi")]
    assert not stubs, f"stubs {stubs} would hide the modules' inline annotations"


@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
def test_every_public_function_is_annotated(name):
    """Type checkers read the modules themselves (py.typed, no stubs): every
    parameter and the result of every public function carry an annotation,
    and every annotation resolves."""
    fn = getattr(fastconv, name)
    sig = inspect.signature(fn)
    missing = [p.name for p in sig.parameters.values() if p.annotation is p.empty]
    assert not missing, f"{name}: parameters {missing} have no annotation"
    assert sig.return_annotation is not sig.empty, f"{name}: no return annotation"
    hints = typing.get_type_hints(fn)
    assert set(hints) == set(sig.parameters) | {"return"}, name


@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
def test_every_public_function_has_a_complete_docstring(name):
    """The docstrings are the API reference: each names every parameter and
    says what the function returns (and, for the ops, what it raises)."""
    fn = getattr(fastconv, name)
    doc = inspect.getdoc(fn) or ""
    assert len(doc) > 150, f"{name}: docstring too short to document it"
    for param in inspect.signature(fn).parameters.values():
        if param.kind is param.VAR_POSITIONAL or param.kind is param.VAR_KEYWORD:
            continue
        assert param.name in doc, f"{name}: docstring does not mention {param.name}"
    if name in fastconv.reference.__all__:   # the ops
        for section in ("Args:", "Returns:", "Raises:"):
            assert section in doc, f"{name}: no {section} section"


def test_reference_has_every_op_with_its_signature():
    """fastconv.reference lists every op of fastconv.functional (its thread
    controls aside), each with the fast op's parameter names, order and
    defaults, so one can stand in for the other."""
    ops = [n for n in fastconv.functional.__all__ if n not in ("set_num_threads",
                                                                 "get_num_threads")]
    assert fastconv.reference.__all__ == ops
    for name in ops:
        twin = getattr(fastconv.reference, name, None)
        assert twin is not None, f"fastconv.reference has no {name}"
        fast = inspect.signature(getattr(fastconv.functional, name))
        slow = inspect.signature(twin)
        assert [(p.name, p.default, p.kind) for p in slow.parameters.values()] == \
            [(p.name, p.default, p.kind) for p in fast.parameters.values()], name


def test_top_level_exports_every_functional_name():
    assert set(fastconv.functional.__all__) <= set(fastconv.__all__)
    for name in fastconv.__all__:
        assert hasattr(fastconv, name), name


def test_version_is_defined_once():
    assert fastconv.__version__ == fastconv._version.__version__
    try:
        dist = importlib.metadata.distribution("fastconv")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("fastconv is not installed (testing a source tree)")
    installed_here = os.path.realpath(str(dist.locate_file("fastconv"))) == os.path.realpath(PKG)
    if not installed_here:
        pytest.skip("the installed fastconv is not the one under test")
    assert dist.version == fastconv.__version__


def test_show_config_reports_simd_and_cpu():
    out = io.StringIO()
    fastconv.show_config(file=out)
    text = out.getvalue()
    for key in ("compiler", "flags", "openmp", "simd", "simd_compiled", "target_isa",
                "cpu_features"):
        assert f"\n{key} " in "\n" + text, f"show_config lacks {key}"
    cfg = fastconv._config.config()
    assert set(fastconv._simd.supported()) <= set(cfg["simd_compiled"].split(", "))
    assert fastconv._simd.active() in cfg["simd"]


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
in_source_tree = pytest.mark.skipif(
    not os.path.isfile(os.path.join(ROOT, "pyproject.toml")),
    reason="not run from a source tree (e.g. an installed wheel's test run)")


@in_source_tree
def test_pyproject_metadata():
    tomllib = pytest.importorskip("tomllib")
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        meta = tomllib.load(f)
    project = meta["project"]
    assert project["license"] == "BSD-3-Clause" and project["license-files"] == ["LICENSE"]
    with open(os.path.join(ROOT, "LICENSE")) as f:
        assert f.read().startswith("BSD 3-Clause License")
    # the extension uses no NumPy C API: building needs no NumPy
    assert not any(r.lower().startswith("numpy") for r in meta["build-system"]["requires"])
    assert any(r.startswith("Cython") for r in project["optional-dependencies"]["dev"])
    assert project["authors"] and project["requires-python"] == ">=3.9"
    versions = {c.rsplit(":: ", 1)[1] for c in project["classifiers"]
                if c.startswith("Programming Language :: Python :: 3.")}
    assert {"3.9", "3.13"} <= versions   # the two .ci/extra tests (stage pythons)
    assert os.path.isfile(os.path.join(ROOT, "CHANGELOG.md"))


def test_installed_wheel_ships_the_licence():
    try:
        dist = importlib.metadata.distribution("fastconv")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("fastconv is not installed (testing a source tree)")
    if os.path.realpath(str(dist.locate_file("fastconv"))) != os.path.realpath(PKG):
        pytest.skip("the installed fastconv is not the one under test")
    assert any(str(f).endswith("LICENSE") for f in dist.files or ())
    assert dist.metadata.get("License-Expression") == "BSD-3-Clause"


@in_source_tree
def test_building_without_a_compiler_says_so(tmp_path):
    """`pip install` from source on a machine without gcc: a message that
    says what is missing and what to do, not a bare 'No such file'."""
    pytest.importorskip("Cython")
    import shutil
    for rel in ("setup.py", "csrc", os.path.join("src", "fastconv")):
        src, dst = os.path.join(ROOT, rel), os.path.join(tmp_path, rel)
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
        else:
            shutil.copy2(src, dst)
    env = dict(os.environ, CC="fastconv-test-no-such-compiler")
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_ext"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "no C compiler found" in proc.stderr and "apt-get install gcc" in proc.stderr


@in_source_tree
def test_every_exported_c_function_is_found_by_its_name():
    """Each fc_ function of csrc/fastconv.h has a line naming it where its
    definition is: written out in a csrc/*.c file, or its line in
    csrc/kernels.def, from which dispatch.c generates it (a definition pasted
    from pieces of a name would be invisible to `git grep fc_<name>`)."""
    csrc = os.path.join(ROOT, "csrc")
    with open(os.path.join(csrc, "fastconv.h")) as f:
        exported = set(re.findall(r"^[a-z][\w ]*?\**\b(fc_\w+)\(", f.read(), re.M))
    found = set()
    for name in os.listdir(csrc):
        if name.endswith((".c", ".def")):
            with open(os.path.join(csrc, name)) as f:
                text = f.read()
            found |= set(re.findall(r"^[a-z][\w ]*?\**\b(fc_\w+)\(", text, re.M))
            found |= set(re.findall(r"^FC_(?:KERNEL\(\w+, |WORKSPACE\()(fc_\w+),", text, re.M))
    assert len(exported) > 40
    assert exported <= found, sorted(exported - found)
