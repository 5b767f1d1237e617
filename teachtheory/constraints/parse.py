"""The compact string form of label sets used by the CLI and the configs.

Grammar (case-insensitive, spaces around tokens allowed)::

    spec   := term ("+" term)*          an Intersection when there are several terms
    term   := "none" | "onehot" | "signs" | "simplex" | "nonneg"
            | "box:" NUMBER ":" NUMBER
            | ("ball" | "ball-truth" | "ball-origin") ":" NUMBER [",p=" ("1" | "2" | "inf")]
    NUMBER := a decimal such as 0.5, -1e+20 or 2, or [+-]inf

Every set's :meth:`~teachtheory.constraints.LabelSet.spec` writes this form back.
"""

from __future__ import annotations

import math
import re

from .base import EMPTY_MSG, LabelSet
from .intersection import Intersection
from .sets import BALL_KEYWORDS, Ball, Box, NonNegative, OneHot, Signs, Simplex, Unconstrained

__all__ = ["ACCEPTED_FORMS", "parse_label_set"]

ACCEPTED_FORMS = (
    "none",
    "onehot",
    "signs",
    "simplex",
    "nonneg",
    "box:LOW:HIGH",
    "ball:R",
    "ball-truth:R",
    "ball-origin:R",
    "a ball with ',p=1', ',p=2' or ',p=inf' appended (e.g. 'ball:0.5,p=1')",
    "sets joined by '+' for their intersection (e.g. 'simplex+ball-truth:0.5')",
)

_SIMPLE: dict[str, type[LabelSet]] = {
    cls.keyword: cls for cls in (Unconstrained, OneHot, Signs, Simplex, NonNegative)
}
_CENTER_OF = {keyword: center for center, keyword in BALL_KEYWORDS.items()}
# Decimal numbers and infinities only: float() alone would also take '1_0' and 'nan'.
_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|inf(?:inity)?)")
# A '+' joins two terms unless it is a number's sign or exponent sign, i.e. unless a digit,
# '.', or 'inf' follows it; one at either end or doubled leaves an empty term.
_JOIN = re.compile(r"\+(?!\s*(?:[\d.]|inf))")
_BOX = re.compile(r"box\s*:(?P<low>[^:]*):(?P<high>[^:]*)")
_BALL = re.compile(r"(?P<name>ball(?:-truth|-origin)?)\s*:(?P<radius>[^,]*)(?:,\s*p\s*=(?P<p>.*))?")


class _TermError(ValueError):
    """A term is malformed; the message says how (the caller adds the spec and the accepted forms)."""


def _error(spec: object, problem: str) -> ValueError:
    """The ValueError for a bad spec: the spec, what is wrong, and the accepted forms."""
    return ValueError(f"invalid label set spec {spec!r}: {problem}; accepted forms: " + "; ".join(ACCEPTED_FORMS))


def _number(text: str, what: str) -> float:
    """Parse ``text`` as a decimal number or infinity; ``what`` names it in the error."""
    t = text.strip()
    if not t:
        raise _TermError(f"the {what} is missing")
    if not _NUMBER.fullmatch(t):
        raise _TermError(f"{what} {t!r} is not a number (write e.g. 0.5, 2, 1e-3 or inf)")
    return float(t)


def _parse_term(term: str) -> LabelSet:
    """One set from one ``+``-separated term (already lower-cased and stripped)."""
    if not term:
        raise _TermError("empty term: '+' must join two sets")
    if term in _SIMPLE:
        return _SIMPLE[term]()
    m = _BOX.fullmatch(term)
    if m:
        return Box(_number(m["low"], "box lower bound"), _number(m["high"], "box upper bound"))
    m = _BALL.fullmatch(term)
    if m:
        radius = _number(m["radius"], "radius")
        p = 2.0 if m["p"] is None else _number(m["p"], "norm p")
        return Ball(radius, center=_CENTER_OF[m["name"]], p=p)
    name = re.split(r"[:,]", term, maxsplit=1)[0].strip()
    if name == "box":
        raise _TermError(f"{term!r} is not of the form box:LOW:HIGH")
    if name in _CENTER_OF:
        raise _TermError(f"{term!r} is not of the form {name}:R or {name}:R,p=1|2|inf")
    if name in _SIMPLE:
        raise _TermError(f"{name!r} takes no parameters, got {term!r}")
    raise _TermError(f"unknown label set {term!r}")


def parse_label_set(spec: str) -> LabelSet:
    """Read a label set from its compact string form.

    Forms: ``none``, ``onehot``, ``signs``, ``simplex``, ``nonneg``,
    ``box:LOW:HIGH``, ``ball:R`` (around the prediction), ``ball-truth:R``,
    ``ball-origin:R``, balls optionally suffixed ``,p=1|2|inf``, and ``+``
    joining sets into an :class:`~teachtheory.constraints.Intersection`, e.g.
    ``simplex+ball-truth:0.5`` or ``nonneg+ball-origin:2`` (DHT's constraint).
    Numbers are decimals or ``[+-]inf``; radii are at least 0 and boxes need
    ``LOW <= HIGH``.

    Args:
        spec: the string.

    Returns:
        The set; ``parse_label_set(s.spec()) == s`` for every set ``s``.

    Raises:
        TypeError: if ``spec`` is not a string.
        ValueError: naming the spec, what is wrong with it and the accepted forms,
            for unknown or malformed terms, invalid parameters (a NaN or negative
            radius, ``LOW > HIGH``, a norm other than 1, 2, inf), empty terms
            (``'simplex+'``), and boxes that no label satisfies (``'box:0:1+box:2:3'``).

    Example:
        >>> s = parse_label_set("simplex+ball-truth:0.5")
        >>> type(s).__name__, s.spec()
        ('Intersection', 'simplex+ball-truth:0.5')
        >>> parse_label_set(" Ball-Origin:2 ").spec()
        'ball-origin:2.0'
        >>> import torch
        >>> parse_label_set("simplex").project(torch.tensor([[0.5, 1.5, -1.0]]))
        tensor([[0., 1., 0.]])
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a string such as 'simplex' or 'ball:0.5', got {type(spec).__name__}")
    if not spec.strip():
        raise _error(spec, "the spec is empty")
    sets: list[LabelSet] = []
    for term in _JOIN.split(spec.strip().lower()):
        try:
            sets.append(_parse_term(term.strip()))
        except ValueError as err:  # _TermError, or a set's own check on its parameters
            raise _error(spec, str(err)) from err
    if len(sets) == 1:
        return sets[0]
    boxes = [s.coordinate_bounds for s in sets if s.coordinate_bounds is not None]
    low, high = max((b[0] for b in boxes), default=-math.inf), min((b[1] for b in boxes), default=math.inf)
    if low > high:
        raise _error(spec, f"{EMPTY_MSG} (no label has {low:g} <= y_k <= {high:g})")
    return Intersection(*sets)
