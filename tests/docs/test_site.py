"""The documentation site builds with warnings as errors, and every page and internal link resolves."""

from __future__ import annotations

import importlib.util
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from teachtheory.docsite import DOCS_REQUIREMENTS, build_site

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in DOCS_REQUIREMENTS),
                                reason="docs extra not installed")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if tag in ("a", "img", "link", "script") and attrs.get(key):
                self.links.append(attrs[key])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(errors="replace"))
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    # built from a private copy of docs/: the build rewrites docs/generated, and pytest-xdist workers that each run
    # a test of this module would otherwise race on it
    source = tmp_path_factory.mktemp("docs-source") / "docs"
    shutil.copytree(ROOT / "docs", source, ignore=shutil.ignore_patterns("_build", "generated"))
    out = tmp_path_factory.mktemp("site")
    index = build_site(out, source=source, gallery=False, run_checks=None)
    return index.parent


def test_every_page_exists(site):
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    for page in ("index.html", "api.html", "references.html", "claims/index.html", "claims/last.html",
                 "guide/install.html", "guide/sweeps.html", "guide/gpu.html", "gallery/index.html",
                 "generated/teachtheory.engine.html", "generated/teachtheory.sweep.html"):
        assert page in pages, page


def test_every_internal_link_and_anchor_resolves(site):
    # pages only: _static/ holds the theme's own templates (their links are Jinja expressions, not URLs)
    parsed = {p: _parse(p) for p in site.rglob("*.html") if not p.relative_to(site).parts[0].startswith("_")}
    broken = []
    for page, links in parsed.items():
        for link in links.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith(("mailto:", "//", "data:")):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if not target.exists():
                broken.append(f"{page.relative_to(site)} -> {link}")
            elif parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)} -> {link} (no anchor)")
    assert not broken, broken[:20]


def test_claims_pages_cite_the_papers(site):
    text = (site / "claims" / "last.html").read_text()
    assert "last.kaczmarz" in text and "Liu" in text
    refs = (site / "references.html").read_text()
    assert "Iterative Teaching by Label Synthesis" in refs and "On-line learning in soft committee machines" in refs
