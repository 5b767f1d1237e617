"""The verdict helpers every claim check ends with, and the figure-finishing helpers of teachtheory.plotting."""

from __future__ import annotations

import numpy as np
import pytest

from teachtheory.claims import (
    CheckContext,
    bound_verdict,
    combine,
    conclude,
    exact_verdict,
    mean_se,
    outcome,
    power_suffix,
    se_verdict,
)
from teachtheory.plotting import draw_figure, finish_figure, plt, se_band, style_axes, tolerance_lines


@pytest.mark.parametrize(("holds", "corrected", "assumptions", "expected"), [
    (True, False, True, "holds"),
    (True, True, True, "holds"),
    (False, True, True, "printed-form-wrong"),
    (False, False, True, "fails"),
    (True, True, False, "error"),
    (False, True, False, "error"),
])
def test_outcome(holds, corrected, assumptions, expected):
    assert outcome(holds, corrected, assumptions) == expected


def test_conclude_takes_a_bool_or_a_verdict_name():
    v = conclude(True, 1.5, 2.0, "rule", "msg", {"a": 1}, "fig.png")
    assert (v.verdict, v.statistic, v.tolerance, v.tolerance_rule, v.message, v.details, v.figure) == (
        "holds", 1.5, 2.0, "rule", "msg", {"a": 1}, "fig.png")
    assert conclude(np.bool_(False), 1.0, 0.0, "r", "m").verdict == "fails"
    assert conclude("printed-form-wrong", 1.0, 0.0, "r", "m").verdict == "printed-form-wrong"
    assert conclude(True, 1.0, 0.0, "r", "m").details == {}
    with pytest.raises(ValueError, match="verdict must be one of"):
        conclude("maybe", 1.0, 0.0, "r", "m")
    with pytest.raises(TypeError, match="holds must be a bool"):
        conclude(1, 1.0, 0.0, "r", "m")


def test_exact_verdict_uses_the_largest_absolute_error():
    v = exact_verdict(np.array([[1e-13, -3e-12], [0.0, 2e-12]]), 1e-12, "r", "m")
    assert v.verdict == "fails" and v.statistic == 3e-12 and v.tolerance == 1e-12
    assert exact_verdict([1e-13, -5e-13], 1e-12, "r", "m").verdict == "holds"
    assert exact_verdict(0.0, 1e-12, "r", "m", conditions=False).verdict == "fails"  # another exact part failed
    assert exact_verdict(np.zeros(0), 1e-12, "r", "m").statistic == 0.0


def test_bound_verdict_is_one_sided():
    assert bound_verdict(-3.0, 5.0, "r", "m").verdict == "holds"  # far below an upper bound
    assert bound_verdict(5.0, 5.0, "r", "m").verdict == "holds"
    assert bound_verdict(5.1, 5.0, "r", "m").verdict == "fails"
    assert bound_verdict(0.0, 0.0, "r", "m", above=True).verdict == "fails"  # a strict margin
    assert bound_verdict(1e-9, 0.0, "r", "m", above=True).verdict == "holds"
    assert bound_verdict(-1.0, 0.0, "r", "m", conditions=False).verdict == "fails"
    assert bound_verdict(float("nan"), 1.0, "r", "m").verdict == "fails"


def test_combine_takes_the_worst_part():
    good = se_verdict([1.0, 2.0], [1.1, 2.0], [0.1, 0.1], z=5.0)
    bad = se_verdict([1.0], [2.0], [0.1], z=5.0)
    both = combine([good, bad], "r", "m")
    assert both.verdict == "fails" and both.statistic == pytest.approx(10.0) and both.tolerance == 5.0
    assert combine([good], "r", "m").verdict == "holds"
    assert combine([good], "r", "m", conditions=False).verdict == "fails"
    with pytest.raises(ValueError, match="at least one part"):
        combine([], "r", "m")
    other = se_verdict([1.0], [1.0], [0.1], z=3.0)
    with pytest.raises(ValueError, match="share one tolerance"):
        combine([good, other], "r", "m")


def test_power_suffix_and_mean_se():
    assert power_suffix(CheckContext(), "1/pi") == ""
    assert power_suffix(CheckContext(power=True), "1/pi") == " [power: 1/pi]"
    values = np.array([[1.0, 2.0], [3.0, 6.0]])
    mean, se = mean_se(values)
    np.testing.assert_allclose(mean, [2.0, 4.0])
    np.testing.assert_allclose(se, values.std(0, ddof=1) / np.sqrt(2))


def test_finish_figure_saves_titles_and_closes(tmp_path):
    fig, ax = plt.subplots()
    line = se_band(ax, np.arange(3), [1.0, 2.0, 3.0], [0.1, 0.1, 0.1], label="mean")
    tolerance_lines(ax, 5.0)
    style_axes(ax, "t", "value", "panel", yscale="log")
    assert ax.get_yscale() == "log" and ax.get_title() == "panel" and ax.get_legend() is not None
    assert line.get_label() == "mean" and len(ax.lines) == 3  # the mean and the two tolerance lines
    written = finish_figure(fig, tmp_path / "fig", title="a title")
    assert written == str(tmp_path / "fig.png") and (tmp_path / "fig.png").stat().st_size > 0
    assert fig._suptitle.get_text() == "a title"
    assert not plt.fignum_exists(fig.number)
    fig, _ = plt.subplots()
    assert finish_figure(fig, None) is None and not plt.fignum_exists(fig.number)
    with pytest.raises(ValueError, match="grid must be"):
        style_axes(plt.subplots()[1], grid="minor")
    plt.close("all")


def test_draw_figure_only_draws_with_a_path(tmp_path):
    calls = []

    def draw(data, path, formats, title=""):
        calls.append((data, title))
        return [path.with_suffix(f".{formats[0]}")]

    assert draw_figure(draw, 1, None, title="t") is None and not calls
    assert draw_figure(draw, 1, tmp_path / "f", title="t") == str(tmp_path / "f.png") and calls == [(1, "t")]


def test_verdict_line_validates_and_reports_render_it(tmp_path):
    from teachtheory.claims import Claim, Verdict, verdict_line
    from teachtheory.report import verdict_line_bullets, write_claims_pages

    line = verdict_line("literal reading", "holds-in-regime", "t < 600")
    assert line == {"label": "literal reading", "verdict": "holds-in-regime", "text": "t < 600"}
    with pytest.raises(ValueError, match="verdict must be one of"):
        verdict_line("x", "mostly", "")
    with pytest.raises(ValueError, match="label"):
        verdict_line("", "holds", "")
    v = Verdict("test.lines", "holds", details={"verdict_lines": [line]})
    assert verdict_line_bullets(v) == ["- *literal reading:* `holds-in-regime` — t < 600", ""]
    assert verdict_line_bullets(Verdict("test.lines", "holds")) == []
    claim = Claim("test.lines", "none", "x", check=lambda ctx: v)
    write_claims_pages([claim], [v], tmp_path, "full")
    page = (tmp_path / "test.md").read_text()
    assert "`holds-in-regime` — t < 600" in page and "at the `full` scale" in page
