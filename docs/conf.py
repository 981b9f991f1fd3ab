"""Sphinx configuration of fastconv's docs site.

The API reference is generated at build time from the packages themselves
(`write_api_pages`): every public name of every public (sub)module, so a new
op, layer, optimizer or subpackage appears without editing these docs.  The
docs import the fastconv being documented: build them with fastconv built or
installed (`pip install ".[docs]"`, or PYTHONPATH=src after an in-place
build).
"""
import importlib
import inspect
import os
import pkgutil
import re

import fastconv

project = "fastconv"
author = "The fastconv maintainers"
copyright = "2026, The fastconv maintainers"
release = version = fastconv.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.napoleon",
              "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = True
html_theme = "alabaster"
html_theme_options = {"description": "fast CPU convolution for NumPy"}

HERE = os.path.dirname(os.path.abspath(__file__))

# The public packages documented, with one line each; their public
# submodules (no leading underscore) are found and documented too.
PACKAGES = [
    ("fastconv", "Top level: every op of fastconv.functional, plus the helpers below."),
    ("fastconv.functional", "The compiled ops (forward and backward)."),
    ("fastconv.reference", "The plain-NumPy twin of every op: the oracle of the tests."),
    ("fastconv.nn", "Layers, containers and losses for training code."),
    ("fastconv.optim", "Optimizers (and schedulers where present)."),
    ("fastconv.bench", "The benchmark: case table, adapters, timing, compare."),
    ("fastconv.distributed", "Data-parallel training over MPI (the mpi extra)."),
]


def _public_names(module):
    """The module's __all__, else its public functions and classes defined in
    fastconv; names re-exported from fastconv.functional are documented there
    only."""
    names = getattr(module, "__all__", None)
    if names is None:   # defined here or in this package's private submodules
        home = module.__name__
        names = [n for n, obj in vars(module).items() if not n.startswith("_")
                 and (inspect.isfunction(obj) or inspect.isclass(obj))
                 and (obj.__module__ == home or obj.__module__.startswith(home + "._"))]
    if module.__name__ == "fastconv":
        names = [n for n in names if n not in fastconv.functional.__all__]
    # submodules have pages of their own
    return [n for n in names if not n.startswith("__")
            and not inspect.ismodule(getattr(module, n))]


def _submodules(name):
    module = importlib.import_module(name)
    yield module
    if hasattr(module, "__path__") and name != "fastconv":
        for info in pkgutil.iter_modules(module.__path__):
            if not info.name.startswith("_"):
                yield from _submodules(f"{name}.{info.name}")


# fastconv's docstrings are plain prose, written for help() and the source:
# |x|, a*b, name_ and __init__ mean what they say there, but are markup in
# reStructuredText.  escape_prose() escapes them outside ``literals``,
# `references`, literal blocks (after "::") and doctests, so any docstring
# renders as written and the -W build fails only on real structure errors.
_SPAN = re.compile(r"(``.+?``|`[^`]+`_{0,2}|:[\w:]+:`[^`]+`)")
_PROSE_MARKUP = re.compile(r"(?<!\\)([|*])|(?<=\w)(?<!\\)(_+)(?=\W|$)")


def _escape_line(line):
    bullet = re.match(r"\s*[*-] ", line)   # a list item's bullet stays markup
    if bullet:
        return bullet.group(0) + _escape_line(line[bullet.end():])
    parts = _SPAN.split(line)
    for i in range(0, len(parts), 2):   # even parts lie outside spans
        parts[i] = _PROSE_MARKUP.sub(
            lambda m: "\\" + m.group(1) if m.group(1) else "\\_" * len(m.group(2)), parts[i])
    return "".join(parts)


def escape_prose(app, what, name, obj, options, lines):
    literal_above = None   # indent of the "::" line that opened a literal block
    for i, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if literal_above is not None:
            if not line.strip() or indent > literal_above:
                continue
            literal_above = None
        if line.lstrip().startswith((">>>", "... ")):
            continue
        lines[i] = _escape_line(line)
        if line.rstrip().endswith("::"):
            literal_above = indent


def setup(app):
    # before napoleon (priority 500): it turns sections into markup of its own
    app.connect("autodoc-process-docstring", escape_prose, priority=400)


def _page(module, blurb):
    title = f"``{module.__name__}``"
    lines = [title, "=" * len(title), "", blurb, "",
             f".. automodule:: {module.__name__}", "   :no-members:", ""]
    for name in _public_names(module):
        obj = getattr(module, name)
        full = f"{module.__name__}.{name}"
        if inspect.isclass(obj):
            lines += [f".. autoclass:: {full}", "   :members:", ""]
        elif callable(obj):
            lines += [f".. autofunction:: {full}", ""]
        else:
            lines += [f".. autodata:: {full}", "   :annotation:", ""]
    return "\n".join(lines) + "\n"


def write_api_pages(app=None):
    """docs/api/*.rst, one page per public module, and their index."""
    out = os.path.join(HERE, "api")
    os.makedirs(out, exist_ok=True)
    pages = []
    for package, blurb in PACKAGES:
        for module in _submodules(package):
            text = _page(module, blurb if module.__name__ == package else "")
            path = os.path.join(out, module.__name__ + ".rst")
            if not os.path.exists(path) or open(path).read() != text:
                with open(path, "w") as f:
                    f.write(text)
            pages.append(module.__name__)
    index = ["API reference", "=============", "",
             "Generated from the docstrings of every public module.", "",
             ".. toctree::", "   :maxdepth: 1", ""] + [f"   {p}" for p in pages]
    with open(os.path.join(out, "index.rst"), "w") as f:
        f.write("\n".join(index) + "\n")


def write_extra_toc():
    """Pages other parts of the project add (docs/performance.md) join the
    table of contents when they exist."""
    extra = [name for name in ("performance",) if os.path.exists(os.path.join(HERE, name + ".md"))]
    lines = [".. toctree::", "   :maxdepth: 1", "   :caption: More", ""]
    lines += [f"   {name}" for name in extra] + ["   changelog"]
    with open(os.path.join(HERE, "_extra_toc.rst.inc"), "w") as f:
        f.write("\n".join(lines) + "\n")


write_api_pages()
write_extra_toc()
