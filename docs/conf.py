"""Sphinx configuration of the teachtheory documentation site (built by ``teachtheory docs``)."""

from __future__ import annotations

import os
import re

import teachtheory

project = "teachtheory"
author = "the teachtheory developers"
copyright = "2026, the teachtheory developers"  # noqa: A001  (Sphinx's name)
release = version = teachtheory.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinxcontrib.bibtex",
    "sphinx_gallery.gen_gallery",
]
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "examples/README.txt", "**.ipynb_checkpoints"]
suppress_warnings = ["config.cache"]  # the gallery's callables cannot be pickled into the environment cache

html_theme = "pydata_sphinx_theme"
html_title = "teachtheory"
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2}

autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": False, "ignore-module-all": True}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

bibtex_bibfiles = ["references.bib"]
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "gallery",
    "filename_pattern": r"/plot_",
    "plot_gallery": os.environ.get("TEACHTHEORY_DOCS_GALLERY", "1") == "1",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

# Docstrings write formulas in plain text (||w - w*||, x*y): characters that reStructuredText would read as
# substitutions or emphasis are escaped outside backtick roles and literal blocks, so the API pages build
# without warnings and show the formulas as written. Runs of prose lines are escaped together, so that a role
# spanning lines (a long :math:) stays whole; a bullet's "* " marker is markup and is kept.
_ROLE = re.compile(r"(``.*?``|:\w+:`[^`]*`|`[^`]*`_?)", re.DOTALL)
_MARK = re.compile(r"(?m)^\s*\* |(?<!\\)([|*])")


def _escape(text: str) -> str:
    parts = _ROLE.split(text)
    for i in range(0, len(parts), 2):  # even parts lie outside roles
        parts[i] = _MARK.sub(lambda m: m.group(0) if m.group(1) is None else "\\" + m.group(1), parts[i])
    return "".join(parts)


def _escape_docstring(app, what, name, obj, options, lines):
    block = None  # indent of the line that opened a literal, math or doctest block
    prose: list[int] = []  # consecutive lines to escape together

    def flush():
        if prose:
            lines[prose[0]:prose[-1] + 1] = _escape("\n".join(lines[prose[0]:prose[-1] + 1])).split("\n")
            prose.clear()

    doctest = False  # inside a doctest example (its expected output is left alone too)
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        doctest = doctest and bool(stripped)
        if block is not None:
            if not stripped or indent > block:
                continue
            block = None
        if doctest or stripped.startswith((">>>", ".. ")):
            flush()
            doctest = doctest or stripped.startswith(">>>")
            if stripped.startswith(".. "):  # a directive (math, note, ...): its body is left alone
                block = indent
            continue
        prose.append(i)
        if stripped.endswith("::"):
            flush()
            block = indent
    flush()


def setup(app):
    """Escape docstrings before napoleon turns their Google-style sections into fields."""
    app.connect("autodoc-process-docstring", _escape_docstring, priority=100)
