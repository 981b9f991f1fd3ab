"""What the sdist and the (repaired) wheel must and must not contain.

Usage: python .ci/check_dists.py SDIST WHEEL   (run by .ci/extra's package stage)
"""
import subprocess
import sys
import tarfile
import tempfile
import zipfile

SDIST_NEEDS = [
    "csrc/fastconv.h", "csrc/common.h", "csrc/dispatch.c", "csrc/kernels.def",
    "csrc/isa/generic.c", "csrc/tests/test_kernels.c", "csrc/tests/Makefile",
    "src/fastconv/_kernels.pyx",
    "src/fastconv/_csrc.pxd", "src/fastconv/py.typed", "src/fastconv/_types.py",
    "tests/conftest.py", "tests/optable.py", "tests/fuzz_child.py", "examples/train_digits.py",
    "setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE", "CHANGELOG.md",
    "docs/conf.py", "docs/index.rst",
]
WHEEL_NEEDS = ["fastconv/py.typed", "fastconv/_types.py", "fastconv/functional/_plan.py"]
METADATA_NEEDS = ["License-Expression: BSD-3-Clause", "Requires-Python: >=3.9",
                  "License-File: LICENSE"]


def sdist_problems(path):
    names = {n.split("/", 1)[1] for n in tarfile.open(path).getnames() if "/" in n}
    problems = [f"sdist lacks {n}" for n in SDIST_NEEDS if n not in names]
    problems += [f"sdist has build output {n}" for n in names
                 if n.endswith((".so", ".o", ".pyc")) or n == "src/fastconv/_kernels.c"]
    return problems, len(names)


def unstripped(data):
    """True when an ELF shared object still has its symbol table or debug info."""
    with tempfile.NamedTemporaryFile(suffix=".so") as f:
        f.write(data)
        f.flush()
        sections = subprocess.run(["readelf", "-S", "-W", f.name], capture_output=True,
                                  text=True, check=True).stdout
    return ".symtab" in sections or ".debug_info" in sections


def wheel_problems(path):
    wheel = zipfile.ZipFile(path)
    names = set(wheel.namelist())
    problems = [f"wheel lacks {n}" for n in WHEEL_NEEDS if n not in names]
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        problems.append("wheel lacks .dist-info/licenses/LICENSE")
    problems += [f"wheel ships source {n}" for n in names
                 if n.endswith((".pyx", ".pxd", ".c", ".h"))]
    modules = [n for n in names if n.startswith("fastconv/_kernels") and n.endswith(".so")]
    if not modules:
        problems.append("wheel lacks the fastconv._kernels extension")
    problems += [f"{n} is not stripped" for n in modules if unstripped(wheel.read(n))]
    metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    problems += [f"METADATA lacks {line!r}" for line in METADATA_NEEDS if line not in metadata]
    return problems, len(names)


def main(sdist, wheel):
    problems, n_sdist = sdist_problems(sdist)
    more, n_wheel = wheel_problems(wheel)
    print(f"sdist: {n_sdist} files; wheel: {n_wheel} files")
    for p in problems + more:
        print("PROBLEM:", p)
    return 1 if problems + more else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
