"""Packaging promises checked against the fastconv being tested (source tree
or installed wheel): type stubs present and in sync with the runtime, py.typed,
one version, show_config's build report."""
import ast
import importlib.metadata
import inspect
import io
import os

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
