"""The README's Python examples run as written."""
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys):
    if "to_torch" in BLOCKS[index]:   # the "Moving to PyTorch" example needs the [torch] extra
        pytest.importorskip("torch")
        pytest.importorskip("safetensors")
    exec(compile(BLOCKS[index], f"README.md example {index}", "exec"), {})
