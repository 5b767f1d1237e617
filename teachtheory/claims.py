"""Claims, verdicts, the registry and the runner behind ``teachtheory check``.

A claim is a statement from a source paper, with its assumptions checked in code and a check
that returns a :class:`Verdict`. Monte Carlo checks derive their tolerance from the measured
standard error (|estimate - theory| <= z SE + known bias, z = 5 by default), and every
statistical claim can be run with a deliberately wrong constant (``power=True``) — that run
must fail, which the tests assert.
"""

from __future__ import annotations

import math
import os
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .registry import load_entry_points
from .stats import mean_se
from .threads import intra_op_threads
from .validation import (
    DivergenceWarning,
    NonConvergenceError,
    NonConvergenceWarning,
    check_choice,
    check_positive,
    check_seed,
)

__all__ = [
    "CLAIMS",
    "SCALES",
    "VERDICTS",
    "Z_SCORE",
    "CheckContext",
    "Claim",
    "Verdict",
    "bound_verdict",
    "case_seeds",
    "combine",
    "conclude",
    "exact_verdict",
    "format_number",
    "load_claims",
    "mean_se",
    "outcome",
    "power_suffix",
    "register",
    "run_claims",
    "se_verdict",
    "select_claims",
]

VERDICTS = ("holds", "fails", "printed-form-wrong", "error")
SCALES = ("quick", "full")
Z_SCORE = 5.0


@dataclass
class Verdict:
    """The outcome of one claim check.

    Attributes:
        claim_id: the claim's id.
        verdict: one of VERDICTS.
        statistic: the measured number the verdict rests on (e.g. the worst |estimate - theory| / SE,
            or a maximum absolute error); ``tolerance`` is what it was compared with, and
            ``tolerance_rule`` says how that tolerance was derived.
        message: one line for the table.
        details: anything else worth keeping (corrected form, slack curves, per-case numbers).
        seconds: runtime of the check; figure: path of a figure, if one was drawn.
    """

    claim_id: str
    verdict: str
    statistic: float | None = None
    tolerance: float | None = None
    tolerance_rule: str = ""
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    figure: str | None = None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    @property
    def ok(self) -> bool:
        """True when the verdict is ``holds``."""
        return self.verdict == "holds"

    def to_json(self) -> dict[str, Any]:
        """The verdict as a JSON-ready dict (the ``--json`` output of ``teachtheory check``)."""
        from .io import to_jsonable

        return to_jsonable({
            "id": self.claim_id, "verdict": self.verdict, "statistic": self.statistic, "tolerance": self.tolerance,
            "tolerance_rule": self.tolerance_rule, "message": self.message, "seconds": self.seconds,
            "figure": self.figure, "details": self.details,
        })


_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    """One SplitMix64 step on a Python int (Steele, Lea & Flood, OOPSLA 2014): a bijective 64-bit mixer."""
    z = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def case_seeds(seed: int, count: int, tag: str = "") -> list[int]:
    """Seeds of ``count`` independent cases of a check, derived by hashing (seed, tag, case index).

    ``seed + i`` would make seed 1 reuse seed 0's cases 1, 2, ...; hashing the pair instead makes the
    cases of different seeds (and of different tags within one check) unrelated. Each seed is in
    [0, 2^62), so it can seed :class:`teachtheory.random.RunStreams`, and a sampler that gives case r
    the seed + r stays within 63 bits.
    """
    tag_word = 0
    for ch in tag.encode():  # a stable (not per-process salted) hash of the tag
        tag_word = _splitmix64(tag_word ^ ch)
    base = _splitmix64(_splitmix64(int(seed) & _MASK64) ^ tag_word)
    return [_splitmix64(base ^ _splitmix64(i)) >> 2 for i in range(int(count))]


@dataclass
class CheckContext:
    """What a check may use: the scale, a seed, where to put figures, and the z-score for SE tolerances.

    Figures are optional: when ``plots_dir`` cannot be written, :meth:`figure_path` returns None (the
    check skips its figure) and the reason is kept in ``figure_notes`` for the verdict.
    """

    scale: str = "quick"
    seed: int = 0
    plots_dir: Path | None = None
    z: float = Z_SCORE
    power: bool = False  # run with the deliberately wrong constant
    figure_notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        check_choice(self.scale, "scale", SCALES)
        self.seed = check_seed(self.seed, "seed")
        self.z = check_positive(self.z, "z")
        if self.plots_dir is not None:
            self.plots_dir = Path(self.plots_dir)

    def case_seeds(self, count: int, tag: str) -> list[int]:
        """Seeds of ``count`` cases of the check tagged ``tag`` (see :func:`case_seeds`)."""
        return case_seeds(self.seed, count, tag)

    @property
    def full(self) -> bool:
        """True at the full scale."""
        return self.scale == "full"

    def pick(self, quick: Any, full: Any) -> Any:
        """The quick or the full value of a setting."""
        return full if self.full else quick

    def figure_path(self, claim_id: str) -> Path | None:
        """Where the check of ``claim_id`` saves its figure (without suffix); None: no figure.

        None also when the plots folder cannot be created or written; the reason is noted in
        ``figure_notes`` so the verdict can say its figure was skipped (the measurement is kept).
        """
        if self.plots_dir is None:
            return None
        try:
            self.plots_dir.mkdir(parents=True, exist_ok=True)
            writable = os.access(self.plots_dir, os.W_OK | os.X_OK)
            reason = "no permission to write there"
        except OSError as exc:
            writable, reason = False, exc.strerror or str(exc)
        if not writable:
            self.figure_notes.append(f"figure skipped: cannot write {str(self.plots_dir)!r} ({reason})")
            return None
        return self.plots_dir / claim_id.replace(".", "_")


@dataclass
class Claim:
    """A checkable statement.

    Attributes:
        id: the claim's id, prefixed by its family (e.g. ``last.kaczmarz``).
        source: seed file, section, equation or theorem.
        statement: the claim in LaTeX (as printed, corrected where the check says so).
        assumptions: the assumptions, each checked in code by the check.
        check: ``check(ctx) -> Verdict`` (claim_id, seconds are filled in by the runner).
        statistical: True when the check is a Monte Carlo comparison (then it has a power check).
        method: one line on how the check is done (shown in the table).
    """

    id: str
    source: str
    statement: str
    check: Callable[[CheckContext], Verdict]
    assumptions: Sequence[str] = ()
    statistical: bool = False
    method: str = ""

    def run(self, ctx: CheckContext) -> Verdict:
        """Run the check and return its verdict, never raising for a broken check.

        A check that raises becomes an ``error`` verdict naming the exception. Non-convergence and
        divergence are reported, never hidden: a :class:`~teachtheory.validation.NonConvergenceError`
        gives an ``error`` verdict saying the check's fit did not converge, and a NonConvergence or
        Divergence warning raised during a check is appended to its message. A figure that cannot be
        written never costs the measurement: the check is run again without figures and the verdict
        notes the skipped figure.
        """
        start = time.perf_counter()
        ctx.figure_notes.clear()
        verdict = self._run_once(ctx)
        if verdict.details.get("figure_error"):  # the plots folder failed mid-check: measure again, no figures
            note = verdict.details.pop("figure_error")
            plain = CheckContext(scale=ctx.scale, seed=ctx.seed, plots_dir=None, z=ctx.z, power=ctx.power)
            verdict = self._run_once(plain)
            ctx.figure_notes.append(note)
        if ctx.figure_notes:
            verdict.message = "; ".join([verdict.message, *dict.fromkeys(ctx.figure_notes)]).lstrip("; ")
            verdict.figure = None
        verdict.seconds = time.perf_counter() - start
        return verdict

    def _run_once(self, ctx: CheckContext) -> Verdict:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NonConvergenceWarning)
            warnings.simplefilter("always", DivergenceWarning)
            try:
                with intra_op_threads(1):  # checks are many small tensor ops: one thread is fastest
                    verdict = self.check(ctx)
                verdict.claim_id = self.id
            except NonConvergenceError as exc:
                verdict = Verdict(self.id, "error", message=f"did not converge: {exc}",
                                  details={"non_convergence": str(exc)})
            except OSError as exc:
                if ctx.plots_dir is not None and _inside(getattr(exc, "filename", None), ctx.plots_dir):
                    return Verdict(self.id, "error", details={
                        "figure_error": f"figure skipped: cannot write {str(exc.filename)!r} ({exc.strerror or exc})"})
                verdict = _error_verdict(self.id, exc)
            except Exception as exc:  # noqa: BLE001 (the check itself broke: report it as a verdict, never hide it)
                verdict = _error_verdict(self.id, exc)
        notes = [" ".join(str(w.message).split()) for w in caught
                 if issubclass(w.category, (NonConvergenceWarning, DivergenceWarning))]
        for w in caught:  # other warnings are not ours to swallow
            if not issubclass(w.category, (NonConvergenceWarning, DivergenceWarning)):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if notes:
            kind = "non-convergence" if any("converge" in n or "stopped" in n for n in notes) else "divergence"
            verdict.message = "; ".join([verdict.message, f"{kind} during the check: " + "; ".join(dict.fromkeys(notes))]
                                        ).lstrip("; ")
            verdict.details = {**verdict.details, "warnings": list(dict.fromkeys(notes))}
        return verdict


def _error_verdict(claim_id: str, exc: BaseException) -> Verdict:
    return Verdict(claim_id, "error", message=f"{type(exc).__name__}: {exc}",
                   details={"traceback": traceback.format_exc(limit=6)})


def _inside(filename, folder: Path) -> bool:
    """Whether ``filename`` (of an OSError) lies in ``folder``."""
    if not filename:
        return False
    try:
        return Path(os.path.abspath(filename)).is_relative_to(Path(os.path.abspath(folder)))
    except (TypeError, ValueError):
        return False


CLAIMS: dict[str, Claim] = {}


def register(claim: Claim) -> Claim:
    """Add a claim to the registry :data:`CLAIMS`; a second claim with the same id is refused (ValueError)."""
    if claim.id in CLAIMS:
        raise ValueError(f"claim {claim.id!r} is registered twice")
    CLAIMS[claim.id] = claim
    return claim


CLAIMS_GROUP = "teachtheory.claims"


def load_claims() -> dict[str, Claim]:
    """Import every claim family registered under the ``teachtheory.claims`` entry-point group.

    Each family module registers its claims on import. The toolkit's own families live in
    ``proofs_checks/``; a user's package adds its own by declaring an entry point in that group.
    """
    load_entry_points(CLAIMS_GROUP)
    return CLAIMS


def select_claims(patterns: Iterable[str] = ()) -> list[Claim]:
    """Claims whose id starts with a pattern (``last`` selects ``last.*``, ``last.thm`` the theorems); all if none."""
    load_claims()
    patterns = list(patterns)
    if not patterns:
        return list(CLAIMS.values())
    chosen, unknown = [], []
    for pattern in patterns:
        # an exact id selects that claim alone; anything else is a prefix
        hits = [CLAIMS[pattern]] if pattern in CLAIMS else [c for cid, c in CLAIMS.items() if cid.startswith(pattern)]
        if not hits:
            unknown.append(pattern)
        chosen.extend(h for h in hits if h not in chosen)
    if unknown:
        raise ValueError(f"no claim matches {', '.join(map(repr, unknown))}; known ids start with: "
                         f"{', '.join(sorted({cid.split('.')[0] for cid in CLAIMS}))}")
    return chosen


def run_claims(
    claims: Sequence[Claim], ctx: CheckContext, progress: Callable[[Claim, int], None] | None = None
) -> list[Verdict]:
    """Run the checks in order; ``progress(claim, done)`` is called before each one."""
    results = []
    for i, claim in enumerate(claims):
        if progress is not None:
            progress(claim, i)
        results.append(claim.run(ctx))
    return results


def se_verdict(
    estimate: np.ndarray | float,
    theory: np.ndarray | float,
    se: np.ndarray | float,
    *,
    z: float,
    bias: np.ndarray | float = 0.0,
    what: str = "estimate",
    details: dict | None = None,
) -> Verdict:
    """Compare Monte Carlo estimates with theory: holds iff |estimate - theory| <= z SE + bias everywhere.

    The statistic is the worst standardised gap max |estimate - theory - 0| / SE (bias
    subtracted), the tolerance is z.
    """
    estimate, theory = np.asarray(estimate, float), np.asarray(theory, float)
    se = np.broadcast_to(np.asarray(se, float), estimate.shape)
    bias = np.broadcast_to(np.asarray(bias, float), estimate.shape)
    gap = np.maximum(np.abs(estimate - theory) - bias, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        standardised = np.where(se > 0, gap / se, np.where(gap > 0, np.inf, 0.0))
    worst = float(standardised.max()) if standardised.size else 0.0
    holds = bool(np.all(gap <= z * se))
    index = np.unravel_index(int(np.argmax(standardised)), standardised.shape) if standardised.size else ()
    msg = (f"worst |{what} - theory| = {worst:.2f} SE" + (f" at index {tuple(int(i) for i in index)}" if index else ""))
    return Verdict("", "holds" if holds else "fails", statistic=worst, tolerance=z,
                   tolerance_rule=f"|{what} - theory| <= {z:g} x measured standard error"
                   + (" + known bias" if np.any(bias > 0) else ""),
                   message=msg, details=details or {})


def outcome(holds: bool, corrected: bool = False, assumptions: bool = True) -> str:
    """The verdict name of a check.

    Args:
        holds: the claim holds as printed.
        corrected: the corrected form (derived by the check) holds; only read when ``holds`` is False.
        assumptions: every assumption checked in code is met on the problem used; if not, ``error``.

    Returns:
        ``error``, ``holds``, ``printed-form-wrong`` (only the corrected form holds) or ``fails``.
    """
    if not assumptions:
        return "error"
    if holds:
        return "holds"
    return "printed-form-wrong" if corrected else "fails"


def conclude(
    holds: bool | str,
    statistic: float | None,
    tolerance: float | None,
    rule: str,
    message: str,
    details: dict | None = None,
    figure: str | None = None,
) -> Verdict:
    """The Verdict a check returns (the runner fills in its id and runtime).

    Args:
        holds: True/False for ``holds``/``fails``, or a verdict name from :func:`outcome`.
        statistic, tolerance: the number the verdict rests on and what it was compared with.
        rule: how the tolerance was derived (``Verdict.tolerance_rule``).
        message: one line for the table. details: anything else worth keeping. figure: a saved figure's path.
    """
    if isinstance(holds, str):
        name = holds
    elif isinstance(holds, (bool, np.bool_)):
        name = "holds" if holds else "fails"
    else:
        raise TypeError(f"holds must be a bool or a verdict name, got {type(holds).__name__}")
    return Verdict("", name, statistic=statistic, tolerance=tolerance, tolerance_rule=rule, message=message,
                   details={} if details is None else details, figure=figure)


def bound_verdict(
    statistic: float,
    tolerance: float,
    rule: str,
    message: str,
    *,
    above: bool = False,
    conditions: bool = True,
    details: dict | None = None,
    figure: str | None = None,
) -> Verdict:
    """A one-sided check of a statistic against a bound: holds iff statistic <= tolerance, or, with
    ``above``, statistic > tolerance (a strict margin or a z-score that must exceed z); and ``conditions``."""
    ok = statistic > tolerance if above else statistic <= tolerance
    return conclude(bool(ok and conditions), statistic, tolerance, rule, message, details, figure)


def exact_verdict(error: np.ndarray | float, tolerance: float, rule: str, message: str, **keywords) -> Verdict:
    """An exact check: holds iff max |error| <= tolerance (a rounding allowance) and ``conditions`` hold.

    The statistic is max |error| over every entry of ``error`` (a number or an array of errors). The
    keywords are those of :func:`bound_verdict`: ``conditions`` (the check's other exact parts, e.g. sympy
    differences and identities, folded into the verdict), ``details`` and ``figure``.
    """
    error = np.abs(np.asarray(error, float))
    return bound_verdict(float(error.max()) if error.size else 0.0, tolerance, rule, message, **keywords)


def combine(
    parts: Iterable[Verdict],
    rule: str,
    message: str,
    *,
    conditions: bool = True,
    details: dict | None = None,
    figure: str | None = None,
) -> Verdict:
    """All sub-checks hold (and ``conditions``): the statistic is the worst part's, the tolerance theirs.

    Args:
        parts: sub-verdicts sharing one tolerance (e.g. several :func:`se_verdict` at the same z).
        rule, message, details, figure: as for :func:`conclude`. conditions: the check's other parts.

    Raises:
        ValueError: when ``parts`` is empty or its tolerances differ.
    """
    parts = list(parts)
    if not parts:
        raise ValueError("combine needs at least one part")
    tolerances = {p.tolerance for p in parts}
    if len(tolerances) != 1:
        raise ValueError(f"combine: the parts must share one tolerance, got {sorted(tolerances)}")
    holds = all(p.ok for p in parts) and bool(conditions)
    return conclude(holds, max(p.statistic for p in parts), parts[0].tolerance, rule, message, details, figure)


def power_suffix(ctx: CheckContext, note: str) -> str:
    """`` [power: note]`` in a power run (the deliberately wrong constant), else empty: for messages and titles."""
    return f" [power: {note}]" if ctx.power else ""


def format_number(value: float | None) -> str:
    """A statistic for a table: 3 significant digits, ``-`` for None, ``inf``/``nan`` spelled out."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-" if value is None else str(value)
    return f"{value:.3g}"
