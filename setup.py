"""Build the fastconv extension: csrc/*.c plus the Cython bridge, one module.

Environment switches (read once here):
  FASTCONV_NATIVE=1    add -march=native (faster, not portable: local builds only)
  FASTCONV_SANITIZE=1  build with -fsanitize=address,undefined and -O1 -g (UBSan
                       aborts on error); run with LD_PRELOAD=$(gcc
                       -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0,
                       as .ci/extra does (see CONTRIBUTING.md)
  FASTCONV_NO_OPENMP=1 build serial even when the compiler supports OpenMP
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _env_flag(name):
    return os.environ.get(name, "").strip() not in ("", "0", "false", "no")


def _compiles_with(compiler_cmd, flags):
    """True when a tiny OpenMP program compiles and links with `flags`."""
    tmp = tempfile.mkdtemp()
    try:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        cmd = list(compiler_cmd) + [src, "-o", os.path.join(tmp, "probe")] + flags
        return subprocess.run(cmd, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    """Choose flags per compiler (as thinc does), probing OpenMP by compiling."""

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        if ctype == "msvc":
            compile_args, link_args = ["/O2", "/openmp"], []
        else:
            # -ffp-contract=fast: strict -std=c99 turns off a*b+c -> fma, which
            # halves the GEMM micro-kernel's peak.
            compile_args = ["-O3", "-std=c99", "-ffp-contract=fast", "-fno-strict-aliasing"]
            link_args = []
            if _env_flag("FASTCONV_SANITIZE"):
                # -fno-sanitize-recover: UBSan aborts on the first error
                # instead of printing and carrying on (a CI run must fail).
                sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]
                compile_args = ["-O1", "-g", "-std=c99", "-ffp-contract=fast",
                                "-fno-omit-frame-pointer"] + sanitize
                link_args += sanitize
            if _env_flag("FASTCONV_NATIVE"):
                compile_args.append("-march=native")
            if not _env_flag("FASTCONV_NO_OPENMP") and _compiles_with(
                    self.compiler.compiler_so[:1], ["-fopenmp"]):
                compile_args.append("-fopenmp")
                link_args.append("-fopenmp")
        flags = " ".join(compile_args)
        for ext in self.extensions:
            ext.extra_compile_args = compile_args
            ext.extra_link_args = link_args
            ext.define_macros.append(("FC_BUILD_FLAGS", '"%s"' % flags))
        super().build_extensions()


def _extensions():
    from Cython.Build import cythonize

    ext = Extension(
        "fastconv._kernels",
        # csrc/*.c: the dispatch and build info; csrc/isa/*.c: one kernel
        # table per instruction set, each compiling every *_template.h.
        sources=(["src/fastconv/_kernels.pyx"] + sorted(glob.glob("csrc/*.c"))
                 + sorted(glob.glob("csrc/isa/*.c"))),
        include_dirs=["csrc"],
        depends=glob.glob("csrc/*.h"),
    )
    return cythonize([ext], compiler_directives={"language_level": 3},
                     include_path=["src"])


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
