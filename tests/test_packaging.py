"""Packaging promises checked against the fastconv being tested (source tree
or installed wheel): py.typed and inline annotations on every public
function, a complete docstring each, a reference twin of every op with its
signature, one version, show_config's build report."""
import importlib.metadata
import inspect
import io
import os
import typing

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
