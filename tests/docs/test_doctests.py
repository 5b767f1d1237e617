"""The ``>>>`` examples in the docstrings of the central public functions run and give what they show.

Only the modules listed here are collected (not ``--doctest-modules`` over the whole package, which would import
every module, optional dependencies included). The escaping hook of docs/conf.py, which prepares docstrings for
reStructuredText, is checked here too.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# module -> the docstrings that must hold examples (a guard against examples silently disappearing)
MODULES = {
    "teachtheory.problems": ["linear_regression"],
    "teachtheory.engine": ["teach"],
    "teachtheory.constraints.parse": ["parse_label_set"],
    "teachtheory.sweep": ["load_spec"],
    "teachtheory.references": ["cite"],
    "teachtheory.random": ["RunStreams"],
}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_docstring_examples(name):
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder()
    tests = {t.name.rsplit(".", 1)[-1]: t for t in finder.find(module) if t.examples}
    missing = [obj for obj in MODULES[name] if obj not in tests]
    assert not missing, f"{name}: no doctest examples in {missing}"
    results = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False, report=False)
    assert results.attempted >= len(MODULES[name])
    assert results.failed == 0, f"{name}: {results.failed} of {results.attempted} doctest examples failed"


def _load_conf():
    if importlib.util.find_spec("sphinx") is None:  # conf.py itself imports only teachtheory, but is for Sphinx
        pytest.skip("docs extra not installed")
    spec = importlib.util.spec_from_file_location("_teachtheory_docs_conf", ROOT / "docs" / "conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    return conf


def test_conf_escapes_plain_text_formulas_only():
    conf = _load_conf()
    lines = [
        "Distance ||w - w*|| after x*y steps.",
        "",
        "* a bullet with ``a*b`` and |x|, and a role :math:`w^* +",
        "  v^*` spanning two lines",
        "",
        "Example:",
        "    >>> 2 * 3",
        "    6",
        "",
        "A literal block::",
        "",
        "    keep *this* |as is|",
        "",
        "back to w*",
    ]
    conf._escape_docstring(None, "function", "f", None, {}, lines)
    assert lines == [
        r"Distance \|\|w - w\*\|\| after x\*y steps.",
        "",
        r"* a bullet with ``a*b`` and \|x\|, and a role :math:`w^* +",
        "  v^*` spanning two lines",
        "",
        "Example:",
        "    >>> 2 * 3",
        "    6",
        "",
        "A literal block::",
        "",
        "    keep *this* |as is|",
        "",
        r"back to w\*",
    ]
