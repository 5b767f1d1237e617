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
# without warnings and show the formulas as written.
_ROLE = re.compile(r"(``.*?``|:\w+:`[^`]*`|`[^`]*`_?)")


def _escape(text: str) -> str:
    parts = _ROLE.split(text)
    for i in range(0, len(parts), 2):  # even parts lie outside roles
        parts[i] = re.sub(r"(?<!\\)([|*])", r"\\\1", parts[i])
    return "".join(parts)


def _escape_docstring(app, what, name, obj, options, lines):
    block = None  # indent of the line that opened a literal, math or doctest block
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if block is not None:
            if not stripped or indent > block:
                continue
            block = None
        if stripped.startswith((">>>", "...")):
            continue
        if stripped.startswith(".. "):  # a directive (math, note, ...): its body is left alone
            block = indent
            continue
        lines[i] = _escape(line)
        if stripped.endswith("::"):
            block = indent


def setup(app):
    """Escape docstrings before napoleon turns their Google-style sections into fields."""
    app.connect("autodoc-process-docstring", _escape_docstring, priority=100)
