"""Packaging promises checked against the fastconv being tested (source tree
or installed wheel): type stubs present and in sync with the runtime, py.typed,
one version, show_config's build report."""
import ast
import importlib.metadata
import inspect
import io
import os
import subprocess
import sys

import pytest

import fastconv
import fastconv.functional

PKG = os.path.dirname(fastconv.__file__)


def _stub_functions(path):
    tree = ast.parse(open(path).read())
    out = {}
    for node in tree.body:  # an @overload-ed op is judged by its first overload
        if isinstance(node, ast.FunctionDef):
            out.setdefault(node.name, node)
    return out


def _stub_params(node):
    args = node.args
    names = [a.arg for a in args.args]
    defaults = [None] * (len(args.args) - len(args.defaults)) + \
        [ast.literal_eval(d) for d in args.defaults]
    return list(zip(names, defaults))


def _runtime_params(fn):
    return [(p.name, None if p.default is inspect.Parameter.empty else p.default)
            for p in inspect.signature(fn).parameters.values()]


def test_py_typed_and_stubs_are_shipped():
    for rel in ("py.typed", "__init__.pyi", os.path.join("functional", "__init__.pyi")):
        assert os.path.isfile(os.path.join(PKG, rel)), f"{rel} missing from the package"


def test_stubs_match_runtime_signatures():
    """Every public op has a stub with the runtime's parameter names, order
    and defaults: a new op needs its stub in functional/__init__.pyi."""
    stubs = _stub_functions(os.path.join(PKG, "functional", "__init__.pyi"))
    for name in fastconv.functional.__all__:
        assert name in stubs, f"functional/__init__.pyi has no stub for {name}"
        assert _stub_params(stubs[name]) == _runtime_params(getattr(fastconv, name)), name
    extra = set(stubs) - set(fastconv.functional.__all__)
    assert not extra, f"stubs for names that do not exist: {sorted(extra)}"


def test_top_level_stub_reexports_everything():
    tree = ast.parse(open(os.path.join(PKG, "__init__.pyi")).read())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
    missing = set(fastconv.__all__) - names
    assert not missing, f"__init__.pyi lacks {sorted(missing)}"


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
