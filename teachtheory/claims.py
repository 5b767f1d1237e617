"""Claims, verdicts, the registry and the runner behind ``teachtheory check``.

A claim is a statement from a source paper, with its assumptions checked in code and a check
that returns a :class:`Verdict`. Monte Carlo checks derive their tolerance from the measured
standard error (|estimate - theory| <= z SE + known bias, z = 5 by default), and every
statistical claim can be run with a deliberately wrong constant (``power=True``) — that run
must fail, which the tests assert.

Sensitivity: a claim declares the constants and terms of its theory (``Claim.mutations``); a check
reads each through :meth:`CheckContext.perturb`, which scales it by (1 + eps) when the context carries
that mutation (the theory side only, never the measurement). :func:`measure_sensitivity` finds, per
mutation, the smallest relative error on a log grid from 1% to 100% that flips the verdict, in both
directions, and the verdict carries it as a :class:`Sensitivity`. The expensive measurement is shared
between the honest and the mutated runs through :meth:`CheckContext.memo`.

Ordering claims ("A beats B", decided by :func:`one_sided_better`) have no constant of a theory; they declare
the generic mutation :data:`EFFECT` instead, which handicaps the favoured arm (see :func:`effect_shift`), so their
sensitivity is the margin by which the ordering is established, as a fraction of the compared quantity.

A family module holds its check functions; its claims' metadata (source, statement, assumptions, method, mutations)
is data, in a claim table beside it (``proofs_checks/ssl.toml`` for ``proofs_checks/ssl.py``), which the module
registers with :func:`register_table` as its last line.
"""

from __future__ import annotations

import contextvars
import importlib.resources
import itertools
import math
import os
import re
import time
import tomllib
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .references import cite
from .registry import load_entry_points
from .stats import mean_se
from .threads import intra_op_threads
from .validation import (
    DivergenceWarning,
    NonConvergenceError,
    NonConvergenceWarning,
    check_choice,
    check_positive,
    check_positive_int,
    check_seed,
)

__all__ = [
    "CLAIMS",
    "EFFECT",
    "SCALES",
    "SENSITIVITY_GRID",
    "SENSITIVITY_TARGET",
    "VERDICTS",
    "Z_SCORE",
    "CheckContext",
    "Claim",
    "Sensitivity",
    "Verdict",
    "bound_verdict",
    "case_seeds",
    "combine",
    "conclude",
    "effect_shift",
    "exact_verdict",
    "format_number",
    "load_claims",
    "mean_se",
    "measure_sensitivity",
    "mutation_signs",
    "one_sided_better",
    "outcome",
    "power_suffix",
    "register",
    "register_table",
    "required_runs",
    "run_claims",
    "se_verdict",
    "select_claims",
    "verdict_line",
]

VERDICTS = ("holds", "fails", "printed-form-wrong", "holds-in-regime", "error")
SCALES = ("quick", "full")
# stated reasons for claims without a mutation operator (shown with their verdicts; --strict accepts them)
ORDERING_REASON = ("an ordering claim between measured quantities, with no constant of the theory to perturb; "
                   "its power check runs the reversed statement, which must fail")
EXACT_REASON = ("an exact comparison of a closed form with an independent computation; "
                "no mutation operator is declared yet, so its sensitivity is not measured")
Z_SCORE = 5.0
SENSITIVITY_TARGET = 0.10  # a claim must catch a 10% error in any declared constant unless it says why not
# the generic mutation of an ordering claim: its effect, i.e. the favoured arm's advantage (see effect_shift)
EFFECT = "effect"
# the context of the check now running (set by Claim.run), so that shared helpers such as one_sided_better can
# apply the EFFECT mutation without every check passing its context down
_ACTIVE: contextvars.ContextVar[CheckContext | None] = contextvars.ContextVar("teachtheory_check", default=None)
# relative errors tried, 1% .. 100% evenly on a log scale (ratio 10^(1/4) ~ 1.78)
SENSITIVITY_GRID = tuple(round(float(x), 4) for x in np.logspace(-2, 0, 9))


@dataclass
class Sensitivity:
    """How small an error in the theory a check catches.

    Attributes:
        target: the relative error the claim must catch (``Claim.sensitivity_target``).
        smallest: per declared mutation, the smallest relative error on :data:`SENSITIVITY_GRID` that flips
            the verdict in both directions (x(1 + eps) and x(1 - eps)); None when even 100% is not caught.
        reason: why the claim has no mutations or a target other than 10% (``Claim.sensitivity_reason``).
        evaluations: mutated runs made; seconds: their total time.
    """

    target: float
    smallest: dict[str, float | None] = field(default_factory=dict)
    reason: str = ""
    evaluations: int = 0
    seconds: float = 0.0

    @property
    def worst(self) -> float | None:
        """The largest smallest-detected error over the mutations (inf if one is never caught); None if none."""
        if not self.smallest:
            return None
        return max(math.inf if v is None else v for v in self.smallest.values())

    @property
    def meets_target(self) -> bool:
        """True when every declared mutation is caught at the target or below (no mutations: only with a reason)."""
        worst = self.worst
        if worst is None:
            return bool(self.reason)
        return worst <= self.target * (1 + 1e-9)

    def describe(self) -> str:
        """One phrase for the table, e.g. ``detects a 3.2% error in eta2-term (target 10%)``."""
        worst = self.worst
        if worst is None:
            return "no mutations declared" + (f" ({self.reason})" if self.reason else "")
        name = max(self.smallest, key=lambda k: math.inf if self.smallest[k] is None else self.smallest[k])
        if not math.isfinite(worst):
            text = f"misses even a 100% error in {name}"
        else:
            text = f"detects a {100 * worst:.3g}% error in {name}"
        if len(self.smallest) > 1:
            text += f" (worst of {len(self.smallest)} terms)"
        text += f"; target {100 * self.target:.3g}%"
        return text + (f" ({self.reason})" if self.reason else "")

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> Sensitivity:
        """The inverse of :meth:`to_json` (for verdicts reloaded from a saved JSON file)."""
        return cls(target=float(row["target"]), smallest=dict(row.get("smallest", {})), reason=row.get("reason", ""),
                   evaluations=int(row.get("evaluations", 0)), seconds=float(row.get("seconds", 0.0)))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: target, smallest per mutation, worst, meets_target, text, evaluations."""
        worst = self.worst
        return {"target": self.target, "smallest": dict(self.smallest),
                "worst": None if worst is None or not math.isfinite(worst) else worst,
                "meets_target": self.meets_target, "text": self.describe(), "reason": self.reason,
                "evaluations": self.evaluations, "seconds": self.seconds}


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
        sensitivity: the smallest error the check catches (filled in by :func:`measure_sensitivity`).
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
    sensitivity: Sensitivity | None = None

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
            "sensitivity": None if self.sensitivity is None else self.sensitivity.to_json(),
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
    ``mutation = (name, eps)`` makes :meth:`perturb` scale the theory constant ``name`` by (1 + eps);
    ``cache`` holds what :meth:`memo` computed, shared by the mutated copies of a context.
    """

    scale: str = "quick"
    seed: int = 0
    plots_dir: Path | None = None
    z: float = Z_SCORE
    power: bool = False  # run with the deliberately wrong constant
    figure_notes: list[str] = field(default_factory=list)
    mutation: tuple[str, float] | None = None
    cache: dict = field(default_factory=dict, repr=False, compare=False)
    perturbed: set = field(default_factory=set, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_choice(self.scale, "scale", SCALES)
        self.seed = check_seed(self.seed, "seed")
        self.z = check_positive(self.z, "z")
        if self.plots_dir is not None:
            self.plots_dir = Path(self.plots_dir)
        if self.mutation is not None:
            name, eps = self.mutation
            if not isinstance(name, str) or not isinstance(eps, (int, float)) or not math.isfinite(eps):
                raise ValueError(f"mutation must be (name: str, eps: finite float), got {self.mutation!r}")

    def perturb(self, name: str, value: Any) -> Any:
        """The theory constant or term ``name`` as the check should use it: ``value`` itself, or value x (1 + eps)
        when this context carries the mutation ``name`` (numbers, arrays and tensors alike).

        Only the theory side of a comparison may pass through here, never the measurement.
        """
        self.perturbed.add(name)
        if self.mutation is not None and self.mutation[0] == name:
            return value * (1.0 + self.mutation[1])
        return value

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per key for this context and its mutated copies (the expensive measurement).

        The key must name everything the result depends on besides the context's scale and seed; the result
        is shared, so callers must not modify it in place.
        """
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def mutated(self, name: str, eps: float) -> CheckContext:
        """A copy carrying the mutation (name, eps), without figures, sharing this context's memo cache."""
        return replace(self, mutation=(name, float(eps)), plots_dir=None, power=False, cache=self.cache,
                       perturbed=set())

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
        mutations: names of the theory's constants and terms the check reads through
            :meth:`CheckContext.perturb`; each is scaled by (1 + eps) when measuring the sensitivity.
        sensitivity_target: the relative error the check must catch (10% unless ``sensitivity_reason`` says why).
        sensitivity_reason: why the target differs from 10% or why there are no mutations.
        one_sided: mutations tested in one direction only, name -> +1 or -1 (the sign of eps that tightens a
            one-sided bound; the other direction loosens it, which a bound check cannot and need not catch).
        shares: a name for a computation this claim's check shares with other claims' checks (a run cached in
            its family module, keyed by scale and seed); :func:`run_claims` with several jobs checks the claims
            sharing one name in one worker, one after another, so the shared run is made once, not once per worker.
    """

    id: str
    source: str
    statement: str
    check: Callable[[CheckContext], Verdict]
    assumptions: Sequence[str] = ()
    statistical: bool = False
    method: str = ""
    mutations: Sequence[str] = ()
    sensitivity_target: float = SENSITIVITY_TARGET
    sensitivity_reason: str = ""
    one_sided: dict[str, int] = field(default_factory=dict)
    shares: str = ""

    def __post_init__(self) -> None:
        self.mutations = tuple(self.mutations)
        for name, sign in self.one_sided.items():
            if name not in self.mutations or sign not in (1, -1):
                raise ValueError(f"claim {self.id!r}: one_sided must map declared mutations to +1 or -1, "
                                 f"got {name!r}: {sign!r}")
        if len(set(self.mutations)) != len(self.mutations) or not all(isinstance(m, str) and m for m in self.mutations):
            raise ValueError(f"claim {self.id!r}: mutations must be distinct non-empty names, got {self.mutations!r}")
        if not 0 < self.sensitivity_target <= 1:
            raise ValueError(f"claim {self.id!r}: sensitivity_target must be in (0, 1], "
                             f"got {self.sensitivity_target!r}")
        if self.sensitivity_target != SENSITIVITY_TARGET and not self.sensitivity_reason:
            raise ValueError(f"claim {self.id!r}: a sensitivity_target other than 10% needs a sensitivity_reason")

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
            plain = CheckContext(scale=ctx.scale, seed=ctx.seed, plots_dir=None, z=ctx.z, power=ctx.power,
                                 mutation=ctx.mutation, cache=ctx.cache)
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
                if ctx.mutation is not None and ctx.mutation[0] not in self.mutations:
                    raise ValueError(f"claim {self.id!r} has no mutation {ctx.mutation[0]!r}; it declares "
                                     f"{self.mutations}")
                token = _ACTIVE.set(ctx)
                try:
                    with intra_op_threads(1):  # checks are many small tensor ops: one thread is fastest
                        verdict = self.check(ctx)
                finally:
                    _ACTIVE.reset(token)
                verdict.claim_id = self.id
                if ctx.mutation is not None and ctx.mutation[0] not in ctx.perturbed:
                    raise RuntimeError(f"claim {self.id!r}: mutation {ctx.mutation[0]!r} was never read through "
                                       "ctx.perturb, so it cannot change the theory")
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
            verdict.message = "; ".join([verdict.message,
                                         f"{kind} during the check: " + "; ".join(dict.fromkeys(notes))]
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


def register_ordering(id: str, source: str, statement: str, check: Callable[[CheckContext], Verdict],
                      **fields: Any) -> Claim:
    """Register a statistical ordering claim (one measured arm beats another; no theory constant to mutate):
    a :class:`Claim` with ``statistical=True`` and :data:`ORDERING_REASON`, the other ``fields`` as given."""
    return register(Claim(id=id, source=source, statement=statement, check=check, statistical=True,
                          sensitivity_reason=ORDERING_REASON, **fields))


# the keys of a claim table's [[claim]] entry (see register_table): required, then optional with their TOML types
_TABLE_REQUIRED = {"id": str, "source": str, "statement": str, "check": str}
_TABLE_OPTIONAL = {"kind": str, "statistical": bool, "assumptions": list, "method": str, "mutations": list,
                   "one_sided": dict, "sensitivity_target": float, "sensitivity_reason": str, "shares": str}
_TABLE_KINDS = ("claim", "ordering")
_CITATION = re.compile(r"\{([^{}]*)\}")


def register_table(module: str, namespace: Mapping[str, Any], path: str | os.PathLike | None = None) -> list[Claim]:
    """Register the claims of a family module from its claim table, in the table's order.

    The table is the TOML file named after the module, beside it (``proofs_checks/last/labels.toml`` for
    ``proofs_checks.last.labels``), read with :mod:`importlib.resources` so that it is found in an installed
    wheel too; a module ends with ``register_table(__name__, globals())``. The file holds one ``[[claim]]``
    table per claim, with the keys:

    - ``id``, ``source``, ``statement`` (LaTeX, best as a TOML literal string ``'''...'''``) and ``check`` (the
      name of the check function in ``namespace``): required strings;
    - ``assumptions`` and ``mutations`` (lists of strings), ``method`` and ``sensitivity_reason`` (strings),
      ``statistical`` (boolean), ``sensitivity_target`` (number), ``one_sided`` (table of mutation -> +1 or -1):
      optional, as the :class:`Claim` fields of those names;
    - ``kind``: ``"claim"`` (the default) or ``"ordering"``, a statistical ordering claim as made by
      :func:`register_ordering` (``statistical`` and ``sensitivity_reason`` are then implied and must not be given).

    In ``source``, ``{key}`` stands for :func:`teachtheory.references.cite` of that reference key, so a source reads
    ``"{last}, Sec. 3.4, Thm 1"``; no other braces are allowed there. Every claim is checked before any is
    registered, so a faulty table registers nothing.

    Args:
        module: the family module's name (``__name__``), inside a package.
        namespace: the module's globals, where the check functions are looked up by name.
        path: read this file instead of the module's own table (for tests and user families).

    Returns:
        The registered claims, in the table's order.

    Raises:
        ValueError: naming the file and the claim id, for an unreadable TOML file, a missing or unknown key, a value
            of the wrong type, an unknown check function or reference key, a duplicate id (in the table or already
            registered), or a field :class:`Claim` refuses.
        FileNotFoundError: when the table does not exist.
    """
    if path is None:
        package, _, stem = module.rpartition(".")
        if not package:
            raise ValueError(f"module must be a module inside a package (its table lies beside it), got {module!r}")
        origin = module.replace(".", "/") + ".toml"
        resource = importlib.resources.files(package).joinpath(stem + ".toml")
        if not resource.is_file():
            raise FileNotFoundError(f"no claim table {origin} for module {module!r}")
        text = resource.read_text(encoding="utf-8")
    else:
        origin = str(path)
        text = Path(path).read_text(encoding="utf-8")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{origin}: not valid TOML: {exc}") from exc
    if set(table) - {"claim"}:
        raise ValueError(f"{origin}: unknown top-level key(s) {sorted(set(table) - {'claim'})}; a claim table holds "
                         "only [[claim]] tables")
    entries = table.get("claim")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{origin}: no [[claim]] tables")
    claims: list[Claim] = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ValueError(f"{origin}, claim #{number}: must be a [[claim]] table, got {entry!r}")
        claim = _table_claim(entry, f"{origin}, claim {entry.get('id', f'#{number}')!r}", module, namespace)
        if claim.id in CLAIMS or any(c.id == claim.id for c in claims):
            raise ValueError(f"{origin}, claim {claim.id!r}: duplicate id (declared twice)")
        claims.append(claim)
    return [register(claim) for claim in claims]


def _table_claim(entry: dict[str, Any], where: str, module: str, namespace: Mapping[str, Any]) -> Claim:
    """One [[claim]] table as a :class:`Claim`; ``where`` names the file and the claim in errors."""
    unknown = set(entry) - set(_TABLE_REQUIRED) - set(_TABLE_OPTIONAL)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; accepted: "
                         f"{', '.join([*_TABLE_REQUIRED, *_TABLE_OPTIONAL])}")
    missing = [key for key in _TABLE_REQUIRED if key not in entry]
    if missing:
        raise ValueError(f"{where}: missing required key(s) {missing}")
    empty = [key for key in _TABLE_REQUIRED if entry[key] == ""]
    if empty:
        raise ValueError(f"{where}: required key(s) {empty} must not be empty")
    fields = dict(entry)
    if isinstance(fields.get("sensitivity_target"), int) and not isinstance(fields["sensitivity_target"], bool):
        fields["sensitivity_target"] = float(fields["sensitivity_target"])
    for key, kind in {**_TABLE_REQUIRED, **_TABLE_OPTIONAL}.items():
        if key in fields and not isinstance(fields[key], kind):
            raise ValueError(f"{where}: {key} must be a {kind.__name__}, got {fields[key]!r}")
    for key in ("assumptions", "mutations"):
        if not all(isinstance(item, str) for item in fields.get(key, [])):
            raise ValueError(f"{where}: {key} must be a list of strings, got {fields[key]!r}")
    name = fields.pop("check")
    check = namespace.get(name)
    if not callable(check):
        raise ValueError(f"{where}: unknown check {name!r}: module {module!r} has no function of that name")
    kind = fields.pop("kind", "claim")
    if kind not in _TABLE_KINDS:
        raise ValueError(f"{where}: kind must be one of {_TABLE_KINDS}, got {kind!r}")
    if kind == "ordering":
        given = sorted({"statistical", "sensitivity_reason"} & set(fields))
        if given:
            raise ValueError(f"{where}: an ordering claim implies statistical and sensitivity_reason; remove {given}")
        fields.update(statistical=True, sensitivity_reason=ORDERING_REASON)

    def citation(match: re.Match) -> str:
        try:
            return cite(match.group(1))
        except KeyError as exc:
            raise ValueError(f"{where}: unknown reference {{{match.group(1)}}} in source ({exc.args[0]})") from None

    fields["source"] = _CITATION.sub(citation, fields["source"])
    if "{" in fields["source"] or "}" in fields["source"]:
        raise ValueError(f"{where}: unbalanced brace in source {entry['source']!r}")
    try:
        return Claim(check=check, **fields)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc


CLAIMS_GROUP = "teachtheory.claims"


def load_claims() -> dict[str, Claim]:
    """Import every claim family registered under the ``teachtheory.claims`` entry-point group.

    Each family module registers its claims on import (from its claim table, see :func:`register_table`). The
    toolkit's own families live in ``proofs_checks/``; a user's package adds its own by declaring an entry point in
    that group.
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
    claims: Sequence[Claim],
    ctx: CheckContext,
    progress: Callable[[Claim, int], None] | None = None,
    *,
    sensitivity: bool = False,
    jobs: int = 1,
    expected_seconds: Mapping[str, float] | None = None,
) -> list[Verdict]:
    """Run the checks; the verdicts come back in the order of ``claims``.

    With ``sensitivity`` each verdict also carries :func:`measure_sensitivity`'s result. Each claim gets a
    fresh memo cache, so nothing measured for one claim leaks into another, and its verdict depends only
    on the claim, the scale and the seed: ``jobs`` worker processes give the same verdicts as one.

    Args:
        claims: the claims to check. ctx: the scale, seed and figure folder they share.
        progress: ``progress(claim, done)``, called before each check with one job, and as each check
            finishes (with the count finished) with several.
        sensitivity: also measure each claim's sensitivity.
        jobs: worker processes (started with ``spawn``, one torch thread each). Workers find the claims
            through the ``teachtheory.claims`` entry points, so with ``jobs > 1`` every claim must be
            registered by an installed family, not only in this process. Claims with the same
            :attr:`Claim.shares` name go to one worker together.
        expected_seconds: claim id -> its expected time (e.g. from an earlier run's verdicts); with several
            jobs the longest work starts first, so no worker is left with a long check at the end. Claims
            missing from it count as the mean of the others.

    Raises:
        ValueError: ``jobs`` is not a positive integer, or a claim is unknown to the worker processes.
    """
    jobs = check_positive_int(jobs, "jobs")
    if jobs > 1 and len(claims) > 1:
        return _run_claims_in_processes(claims, ctx, progress, sensitivity, jobs, expected_seconds or {})
    results = []
    for i, claim in enumerate(claims):
        if progress is not None:
            progress(claim, i)
        results.append(_check_one(claim, ctx, sensitivity))
    return results


def _check_one(claim: Claim, ctx: CheckContext, sensitivity: bool) -> Verdict:
    own = replace(ctx, cache={}, perturbed=set(), mutation=None, figure_notes=[])
    verdict = claim.run(own)
    if sensitivity:
        verdict.sensitivity = measure_sensitivity(claim, own, verdict)
    return verdict


def _check_in_worker(claim_ids: Sequence[str], ctx: CheckContext, sensitivity: bool) -> list[Verdict]:
    """A worker process's share of :func:`run_claims`: load the families, then check claims one after another."""
    import torch

    torch.set_num_threads(1)  # the workers share the machine's cores
    load_claims()
    unknown = [cid for cid in claim_ids if cid not in CLAIMS]
    if unknown:
        raise ValueError(f"claim {unknown[0]!r} is not registered through a 'teachtheory.claims' entry point, so "
                         "worker processes cannot find it; check it with jobs=1")
    return [_check_one(CLAIMS[cid], ctx, sensitivity) for cid in claim_ids]


def work_units(claims: Sequence[Claim], expected_seconds: Mapping[str, float]) -> list[list[int]]:
    """The claims (as indices) grouped into work units for parallel checking, longest expected first.

    Claims naming the same :attr:`Claim.shares` form one unit (in their given order); every other claim is a
    unit of its own. A unit's expected time is the sum of its claims' ``expected_seconds`` (a claim not listed
    counts as the mean of those listed, or 1 when none is); ties keep the claims' order.
    """
    known = [float(expected_seconds[c.id]) for c in claims if c.id in expected_seconds]
    default = sum(known) / len(known) if known else 1.0
    units: dict[str, list[int]] = {}
    for i, claim in enumerate(claims):
        units.setdefault(claim.shares or f"\0{i}", []).append(i)
    cost = {key: sum(float(expected_seconds.get(claims[i].id, default)) for i in unit) for key, unit in units.items()}
    order = sorted(units, key=lambda key: (-cost[key], units[key][0]))
    return [units[key] for key in order]


def _run_claims_in_processes(claims, ctx, progress, sensitivity, jobs, expected_seconds) -> list[Verdict]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = replace(ctx, cache={}, perturbed=set(), mutation=None, figure_notes=[])
    results: dict[int, Verdict] = {}
    units = work_units(claims, expected_seconds)
    with ProcessPoolExecutor(min(jobs, len(units)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(_check_in_worker, [claims[i].id for i in unit], ctx, sensitivity): unit
                   for unit in units}
        for future in as_completed(futures):
            unit = futures[future]
            for i, verdict in zip(unit, future.result(), strict=True):
                results[i] = verdict
                if progress is not None:
                    progress(claims[i], len(results))
    return [results[i] for i in range(len(claims))]


def mutation_signs(claim: Claim, name: str, baseline: Verdict) -> tuple[float, ...]:
    """The signs of eps tried for mutation ``name``: both, the one in ``claim.one_sided``, or, for :data:`EFFECT`,
    the one that can flip the honest verdict (+1 shrinks the advantage of a claim that holds, -1 enlarges the
    advantage of one that does not)."""
    if name == EFFECT:
        return (1.0,) if baseline.ok else (-1.0,)
    return (float(claim.one_sided[name]),) if name in claim.one_sided else (1.0, -1.0)


def _detects(claim: Claim, ctx: CheckContext, baseline: str, name: str, eps: float) -> tuple[bool, float]:
    """Whether the mutation (name, eps) changes the verdict; an ``error`` run counts as not detected."""
    v = claim.run(ctx.mutated(name, eps))
    if v.verdict == "error" and "never read through ctx.perturb" in v.message:
        raise RuntimeError(v.message)
    return v.verdict not in (baseline, "error"), v.seconds


def measure_sensitivity(
    claim: Claim, ctx: CheckContext, baseline: Verdict | None = None, grid: Sequence[float] = SENSITIVITY_GRID
) -> Sensitivity:
    """The smallest relative error, per declared mutation, that flips the claim's verdict.

    For each mutation and each sign, a bisection over ``grid`` (1%..100% on a log scale, assuming a larger
    error is caught whenever a smaller one is) finds the smallest eps whose run x(1 +- eps) gives a verdict
    other than the honest one; the mutation's sensitivity is the larger of the two signs (an error must be
    caught either way; a mutation in ``claim.one_sided``, and :data:`EFFECT`, is tried in one direction, see
    :func:`mutation_signs`). Pass the context the honest
    verdict was computed with, so its memo cache is reused.

    Args:
        claim: the claim. ctx: its context (scale, seed, memo cache). baseline: its honest verdict (run if None).
        grid: the relative errors tried, increasing, in (0, 1].

    Raises:
        ValueError: when ``grid`` is empty, not increasing or outside (0, 1].
    """
    grid = tuple(float(g) for g in grid)
    if not grid or any(b <= a for a, b in itertools.pairwise(grid)) or grid[0] <= 0 or grid[-1] > 1:
        raise ValueError(f"grid must be increasing values in (0, 1], got {grid!r}")
    if baseline is None:
        baseline = claim.run(ctx)
    result = Sensitivity(target=claim.sensitivity_target, reason=claim.sensitivity_reason)
    if baseline.verdict == "error":
        return result
    for name in claim.mutations:
        worst_sign = 0.0
        for sign in mutation_signs(claim, name, baseline):
            lo, hi = -1, len(grid)  # invariant: grid[lo] not caught (or lo = -1), grid[hi] caught (or hi = len)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                caught, seconds = _detects(claim, ctx, baseline.verdict, name, sign * grid[mid])
                result.evaluations += 1
                result.seconds += seconds
                if caught:
                    hi = mid
                else:
                    lo = mid
            worst_sign = math.inf if hi == len(grid) else max(worst_sign, grid[hi])
            if math.isinf(worst_sign):
                break
        result.smallest[name] = None if math.isinf(worst_sign) else worst_sign
    return result


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


def verdict_line(label: str, verdict: str, text: str) -> dict[str, str]:
    """One line of a claim checked under several readings or regimes (kept in ``details["verdict_lines"]``, shown
    under the claim's verdict): e.g. ``verdict_line("literal reading", "printed-form-wrong", "...")``.

    Raises:
        ValueError: when ``verdict`` is not one of :data:`VERDICTS` or ``label`` is empty.
    """
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    if not isinstance(label, str) or not label:
        raise ValueError(f"label must be a non-empty string, got {label!r}")
    return {"label": label, "verdict": verdict, "text": str(text)}


def power_suffix(ctx: CheckContext, note: str) -> str:
    """`` [power: note]`` in a power run (the deliberately wrong constant), else empty: for messages and titles."""
    return f" [power: {note}]" if ctx.power else ""


def required_runs(effect: float, se: float, runs: int, z: float = Z_SCORE, power_z: float = 1.645,
                  cap: int = 4096) -> int:
    """Runs needed so an effect of size ``effect`` clears z SE with probability ~Phi(power_z) (95% by default),
    from a pilot of ``runs`` runs with standard error ``se``: runs x ((z + power_z) se / |effect|)^2, rounded up,
    at least ``runs`` and at most ``cap``.

    Raises:
        ValueError: when runs < 2, se < 0, or z, power_z or cap are not positive.
    """
    if runs < 2 or se < 0 or z <= 0 or power_z < 0 or cap < 1:
        raise ValueError(f"need runs >= 2, se >= 0, z > 0, power_z >= 0, cap >= 1; got {runs}, {se}, {z}, {power_z}, "
                         f"{cap}")
    if effect == 0 or not math.isfinite(effect):
        return cap
    return int(min(cap, max(runs, math.ceil(runs * ((z + power_z) * se / abs(effect)) ** 2))))


def effect_shift(better: np.ndarray | float, worse: np.ndarray | float) -> float:
    """The handicap of the favoured arm under the :data:`EFFECT` mutation: eps x level, 0 otherwise.

    The level is the larger of the two arms' mean magnitudes, max(|mean(better)|, |mean(worse)|): for
    accuracies the favoured arm's accuracy, for losses and errors the baseline's, so eps = 0.1 asks whether
    the favoured arm would still win with an advantage smaller by 10% of that level. Reads the mutation from
    the context of the check now running (set by :meth:`Claim.run`); outside a check, or in a context without
    the mutation, it is 0. Subtract it from the paired differences worse - better (their SE is unchanged).
    """
    ctx = _ACTIVE.get()
    if ctx is None:
        return 0.0
    level = _level(better, worse)
    return float(ctx.perturb(EFFECT, level) - level)


def _level(better, worse) -> float:
    """The scale of an ordering's effect: the larger of the two arms' mean magnitudes."""
    return max(abs(float(np.mean(better))), abs(float(np.mean(worse))))


def one_sided_better(better: np.ndarray, worse: np.ndarray, *, z: float, what: str, power: bool,
                     details: dict | None = None) -> Verdict:
    """Paired one-sided comparison over runs: holds iff mean(worse - better) > z SE (power: the reverse order,
    which must fail when the claim is true). With one run there is no SE and the claim fails.

    A claim deciding its ordering here may declare the mutation :data:`EFFECT`: the differences are then
    shifted by :func:`effect_shift`. The details carry the level and ``detectable``, the smallest advantage
    that clears z SE as a fraction of the level (z SE / level, the minimum detectable effect).
    """
    shift = effect_shift(better, worse)
    diff = np.asarray(worse, float) - np.asarray(better, float) - shift
    if power:
        diff = -diff
    R = diff.size
    mean, se = (float(v) for v in mean_se(diff))
    if not math.isfinite(se):  # one run: no standard error, nothing can be concluded
        se = math.inf
    statistic = mean / se if se > 0 else (math.inf if mean > 0 else -math.inf)
    level = _level(better, worse)
    return Verdict("", "holds" if statistic > z else "fails", statistic=statistic, tolerance=z,
                   tolerance_rule=f"paired mean gap / SE > {z:g} (one-sided, {R} runs)",
                   message=f"{what}: gap {mean:.4g} ± {se:.2g} (SE), {statistic:.2f} SE"
                           + (" [power: reversed order]" if power else "")
                           + (f" [effect shifted by {shift:+.3g}]" if shift else ""),
                   details={"gap_mean": mean, "gap_se": se, "runs": R, "better_mean": float(np.mean(better)),
                            "worse_mean": float(np.mean(worse)), "level": level,
                            "detectable": z * se / level if level > 0 else math.inf, **(details or {})})


def format_number(value: float | None) -> str:
    """A statistic for a table: 3 significant digits, ``-`` for None, ``inf``/``nan`` spelled out."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-" if value is None else str(value)
    return f"{value:.3g}"
