"""The documentation site: regenerate the claims pages and the bibliography, then build the HTML with Sphinx.

``teachtheory docs`` runs the claim checks (or reuses the saved verdicts), writes one MyST page per
claim family with every verdict and figure into ``docs/claims/``, writes ``docs/references.bib`` from
:mod:`teachtheory.references`, and builds the site (user guide, gallery, claims pages, API
reference) with warnings as errors.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from .io import atomic_folder_update, check_writable_folder, from_jsonable, result_folder
from .report import write_bibtex, write_claims_pages

__all__ = ["build_site", "write_generated_pages", "DOCS_REQUIREMENTS"]

DOCS_REQUIREMENTS = ("sphinx", "myst_parser", "pydata_sphinx_theme", "sphinx_gallery", "sphinxcontrib.bibtex")


def _check_docs_dependencies() -> None:
    import importlib.util

    missing = [name for name in DOCS_REQUIREMENTS if importlib.util.find_spec(name) is None]
    if missing:
        raise ValueError(f"building the docs needs {', '.join(missing)}: pip install 'teachtheory[docs]'")


def _check_source(source: Path) -> Path:
    if not (source / "conf.py").is_file():
        raise ValueError(f"--source {str(source)!r} is not the docs folder (it has no conf.py); run from the "
                         "repository root or pass --source")
    return source


def write_generated_pages(source: str | os.PathLike, claims=None, verdicts=None, scale: str = "quick") -> list[Path]:
    """Write the generated parts of the docs: the claims pages (when verdicts are given) and the BibTeX file."""
    source = _check_source(Path(source))
    written = [write_bibtex(source / "references.bib")]
    if claims is not None:
        written += write_claims_pages(claims, verdicts, source / "claims", scale)
    return written


def _saved_verdicts(source: Path):
    """The claims and verdicts saved with the claims pages (to rebuild the site without rerunning checks)."""
    from .claims import CLAIMS, Sensitivity, Verdict, load_claims

    path = source / "claims" / "verdicts.json"
    if not path.is_file():
        raise ValueError(f"{path} is missing: run `teachtheory docs` with the checks (without --no-checks) once")
    rows = from_jsonable(json.loads(path.read_text()))  # "inf"/"nan" strings back to floats
    load_claims()
    claims, verdicts = [], []
    for row in rows:
        if row["id"] not in CLAIMS:
            continue
        claims.append(CLAIMS[row["id"]])
        figure = row.get("figure")
        if figure and not Path(figure).is_absolute():
            figure = str(source / "claims" / figure)  # recorded relative to the claims folder
        sensitivity = Sensitivity.from_json(row["sensitivity"]) if row.get("sensitivity") else None
        verdicts.append(Verdict(row["id"], row["verdict"], row.get("statistic"), row.get("tolerance"),
                                row.get("tolerance_rule", ""), row.get("message", ""), row.get("details") or {},
                                row.get("seconds", 0.0), figure, sensitivity=sensitivity))
    scale = rows[0].get("scale", "quick") if rows else "quick"
    return claims, verdicts, scale


def build_site(
    out: str | os.PathLike,
    *,
    source: str | os.PathLike = "docs",
    gallery: bool = True,
    run_checks: Callable[[Path], tuple[Sequence, Sequence, str]] | None = None,
    quiet: bool = True,
) -> Path:
    """Build the HTML site of ``source`` into ``out`` with warnings as errors; returns ``out/index.html``.

    Args:
        out: the HTML folder.
        source: the docs folder (with conf.py).
        gallery: execute the gallery's example scripts (False: pages without their figures, fast).
        run_checks: ``run_checks(figures_dir) -> (claims, verdicts, scale)`` to regenerate the claims pages;
            None reuses the verdicts saved in ``source/claims/verdicts.json``.
        quiet: keep Sphinx's progress output off the terminal.

    Raises:
        ValueError: the docs dependencies are missing, ``source`` is not a docs folder, or Sphinx reported a
            warning or an error (the message gives them).
    """
    out = check_writable_folder(out, "--out")
    _check_docs_dependencies()
    source = _check_source(Path(source))
    if run_checks is not None:
        # the claims pages, their figures and verdicts.json change together, or not at all
        with atomic_folder_update(source / "claims", "--source") as stage:
            claims, verdicts, scale = run_checks(stage / "figures")
            write_claims_pages(claims, verdicts, stage, scale)
        write_bibtex(source / "references.bib")
    else:
        claims, verdicts, scale = _saved_verdicts(source)
        write_generated_pages(source, claims, verdicts, scale)

    from sphinx.cmd.build import build_main

    log = io.StringIO()
    previous = os.environ.get("TEACHTHEORY_DOCS_GALLERY")
    os.environ["TEACHTHEORY_DOCS_GALLERY"] = "1" if gallery else "0"
    # autosummary's stubs are regenerated from the code: stale ones (of modules since removed) would break the build
    import shutil

    shutil.rmtree(source / "generated", ignore_errors=True)
    # the HTML folder is built beside --out and replaces it whole when the build succeeded
    with result_folder(out, force=True) as partial:
        doctrees = partial / ".doctrees"
        warnings_file = partial / "warnings.log"
        args = ["-b", "html", "-W", "--keep-going", "-d", str(doctrees), "-w", str(warnings_file), str(source),
                str(partial)]
        try:
            if quiet:
                with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                    status = build_main(["-q", *args])
            else:
                status = build_main(args)
        finally:
            if previous is None:
                os.environ.pop("TEACHTHEORY_DOCS_GALLERY", None)
            else:
                os.environ["TEACHTHEORY_DOCS_GALLERY"] = previous
        if status != 0:
            text = warnings_file.read_text() if warnings_file.is_file() else log.getvalue()
            first = [line for line in text.splitlines() if line.strip()][:5]
            raise ValueError(f"the docs build failed with {len(text.splitlines())} warning lines (nothing was "
                             f"replaced in --out): " + " | ".join(first))
    return Path(out) / "index.html"
