"""Every ```python block of README.md runs as written (in a scratch
directory, in a fresh namespace per block, in order): the README's examples
are specifications too."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks():
    if not README.is_file():
        return []
    return BLOCK.findall(README.read_text())


@pytest.mark.skipif(not README.is_file(), reason="README.md is not next to the tests")
def test_readme_has_python_blocks():
    assert len(_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_readme_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)   # blocks may write files (np.savez)
    code = _blocks()[index]
    exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": "readme"})
