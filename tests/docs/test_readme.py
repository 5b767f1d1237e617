"""The README's Python tour runs as written (a user copies it first)."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks(text: str) -> list[str]:
    """The fenced ```python blocks of a Markdown text."""
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_a_python_tour():
    assert python_blocks(README.read_text()), "README.md lost its Python tour"


def test_readme_tour_runs(capsys):
    for block in python_blocks(README.read_text()):
        namespace: dict = {}
        exec(compile(block, str(README), "exec"), namespace)  # noqa: S102  (our own README)
    printed = capsys.readouterr().out
    # the tour prints two summaries (SGD, LAST): mean, std, se and quantiles of the final distance
    assert printed.count("'mean'") == 2
    sgd, last = (namespace["sgd"].final("distance")["mean"], namespace["last"].final("distance")["mean"])
    assert last < sgd  # the README says LAST converges faster than SGD on this problem
