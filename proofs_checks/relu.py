"""Claims of teacher-student ReLU networks (Tian's teacher-student talk): Tian 2017's population gradient, its
Lyapunov region and the symmetry breaking of the multiple-ReLU dynamics. Student specialization (Tian 2020) is
the ``spec`` family (:mod:`proofs_checks.spec`).

References:
    Y. Tian, "An Analytical Formula of Population Gradient for two-layered ReLU network and its
    Applications in Convergence and Critical Point Analysis", ICML 2017.
    Y. Tian, "Understanding Deep Models With Teacher-student Setting" (talk).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from teachtheory.claims import (
    CheckContext,
    Verdict,
    bound_verdict,
    combine,
    conclude,
    outcome,
    power_suffix,
    register_table,
    se_verdict,
)
from teachtheory.plotting import finish_figure, plt, scatter_vs_theory, style_axes, tolerance_lines
from teachtheory.random import RunStreams
from teachtheory.teacher_student import population
from teachtheory.theory import relu as theory

WRONG_CONSTANT = 1.0 / math.pi  # the power checks' deliberately wrong 1/(2 pi)


def _streams(ctx: CheckContext, count: int, tag: str) -> RunStreams:
    """Run streams for ``count`` cases of ``tag``: case seeds hashed from (--seed, tag, index), so different
    --seed values draw disjoint cases (seed + i would reuse the cases of seed - 1 shifted by one)."""
    return RunStreams(torch.tensor(ctx.case_seeds(count, tag), dtype=torch.int64))


def _seed(ctx: CheckContext, tag: str) -> int:
    """One derived seed (for Monte Carlo samplers that give case r the seed + r)."""
    return ctx.case_seeds(1, tag)[0]


def _drawn_pairs(ctx: CheckContext, cases: int, d: int, tag: str) -> tuple[torch.Tensor, torch.Tensor]:
    """w, w* [cases, d] drawn from run streams: Gaussian directions, norms in [0.3, 2]."""
    streams = _streams(ctx, cases, tag)
    w = streams.normal(f"{tag}-w", d, (d,))
    w_star = streams.normal(f"{tag}-w_star", d, (d,))
    w = w / w.norm(dim=-1, keepdim=True) * (0.3 + 1.7 * streams.uniform(f"{tag}-norm", d, (1,)))
    w_star = w_star / w_star.norm(dim=-1, keepdim=True) * (0.3 + 1.7 * streams.uniform(f"{tag}-norm*", d, (1,)))
    return w, w_star


# -- relu.population-gradient ----------------------------------------------------------------


def check_population_gradient(ctx: CheckContext) -> Verdict:
    """(a) sympy: the arc-cosine kernel by integration in the plane, and the symbolic gradient of the
    arc-cosine form of J, equal the printed forms; (b) autograd of the closed-form J equals the gradient
    formula (float64); (c) 2-D polar quadrature equals it (relative error); (d) Monte Carlo means of the
    per-sample gradient agree within z SE (power: the nonlinear term's 1/(2 pi) replaced by 1/pi)."""
    derived, kernel_gap, diff_w, diff_star, autograd_gap, quad_gap = ctx.memo("exact",
                                                                              lambda: _gradient_exact_parts(ctx))
    symbolic_ok = kernel_gap == 0 and diff_w == 0 and diff_star == 0

    # Monte Carlo (memoised: a mutated run recomputes only the closed form)
    constant = ctx.perturb("1/(2pi)", WRONG_CONSTANT if ctx.power else theory.INV_2PI)
    samples = ctx.pick(20000, 200000)
    cases = ctx.pick(12, 48)

    def draws():
        out = []
        for d in (2, 5, 10):
            wm, wsm = _drawn_pairs(ctx, cases, d, "mc")
            mean, se = population.monte_carlo_population_gradient(wm, wsm, samples=samples,
                                                                  seed=_seed(ctx, f"mc-samples-d{d}"))
            out.append((wm, wsm, mean, se))
        return out

    estimates, ses, theories = [], [], []
    for wm, wsm, mean, se in ctx.memo("mc", draws):
        estimates.append(mean.numpy().ravel())
        ses.append(se.numpy().ravel())
        theories.append(theory.population_gradient(wm, wsm, constant=constant).numpy().ravel())
    est, se, th = (np.concatenate(v) for v in (estimates, ses, theories))
    mc = se_verdict(est, th, se, z=ctx.z, what="MC mean gradient component")
    figure = _gradient_figure(ctx.figure_path("relu.population-gradient"), th, est, se, ctx,
                              f"E grad J: {3 * cases} cases (d = 2, 5, 10), {samples} samples each")
    exact_tol = 1e-9
    return combine(
        [mc], f"MC: |mean - formula| <= {ctx.z:g} SE per component; autograd and quadrature: relative error "
        f"<= {exact_tol:g}; sympy differences simplify to 0",
        f"sympy: kernel gap {kernel_gap}, gradient coefficient gaps ({diff_w}, {diff_star}); autograd of J "
        f"{autograd_gap:.1e}; quadrature {quad_gap:.1e}; {mc.message}" + power_suffix(ctx, "1/pi"),
        conditions=symbolic_ok and autograd_gap <= exact_tol and quad_gap <= exact_tol,
        details={"symbolic_kernel": str(derived), "autograd_gap": autograd_gap, "quadrature_gap": quad_gap,
                 "mc_cases": int(est.size), "samples": samples, "constant": constant},
        figure=figure,
    )


def _gradient_exact_parts(ctx: CheckContext):
    """sympy kernel and gradient gaps, autograd and quadrature relative errors of the one-node formula."""
    import sympy as sp

    derived, printed = theory.symbolic_relu_kernel()
    kernel_gap = sp.simplify(derived - printed)
    diff_w, diff_star, _ = theory.symbolic_population_gradient()

    # autograd of J against the formula
    w, w_star = _drawn_pairs(ctx, 64, 7, "autograd")
    wg = w.clone().requires_grad_(True)
    theory.population_loss(wg, w_star).sum().backward()
    g = theory.population_gradient(w, w_star)
    autograd_gap = float(((wg.grad - g).norm(dim=-1) / g.norm(dim=-1).clamp_min(1e-12)).max())

    # quadrature twin
    quad_gap = 0.0
    n_quad = ctx.pick(3, 12)
    for d in (1, 2, 3, 8):
        wq, wsq = _drawn_pairs(ctx, n_quad, d, "quad")
        closed = theory.population_gradient(wq, wsq).numpy()
        for i in range(n_quad):
            radial = "numeric" if i == 0 else "closed"
            q = theory.quadrature_population_gradient(wq[i].numpy(), wsq[i].numpy(), radial=radial)
            quad_gap = max(quad_gap, float(np.linalg.norm(q - closed[i]) / max(np.linalg.norm(closed[i]), 1e-12)))
    return derived, kernel_gap, diff_w, diff_star, autograd_gap, quad_gap


def _gradient_figure(path, theory_values, estimate, se, ctx: CheckContext, title: str) -> str | None:
    """Monte Carlo gradients against the closed form, and a histogram of their standardised gaps."""
    if path is None:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    scatter_vs_theory(axes[0], theory_values, estimate, se, title)
    axes[1].hist((estimate - theory_values) / se, bins=40, color="C0", alpha=0.8)
    tolerance_lines(axes[1], ctx.z, horizontal=False, ls=":")
    style_axes(axes[1], "(MC - closed form) / SE", title="standardised gaps" + power_suffix(ctx, "1/pi"),
               title_size=9, legend=None, grid=None)
    return finish_figure(fig, path, title="relu.population-gradient: closed form vs Monte Carlo")


# -- relu.population-gradient-k --------------------------------------------------------------


def check_population_gradient_k(ctx: CheckContext) -> Verdict:
    """(a) The K-node formula is the exact gradient of the closed-form K-node loss (autograd, both layers);
    (b) with K = 1 and a = a* = 1 it reduces to the one-node formula; (c) h(w, w) = w/2;
    (d) Monte Carlo means of the per-sample gradients (first layer and top weights) agree within z SE.
    Power: 1/(2 pi) in h and kappa replaced by 1/pi."""
    streams = _streams(ctx, 16, "k-autograd")
    W = streams.normal("k-W", 0, (3, 6))
    a = streams.normal("k-a", 0, (3,))
    Ws = streams.normal("k-Ws", 0, (4, 6))
    a_s = streams.normal("k-as", 0, (4,))
    Wg, ag = W.clone().requires_grad_(True), a.clone().requires_grad_(True)
    theory.population_loss_k(Wg, ag, Ws, a_s).sum().backward()
    gW, ga = theory.population_gradient_k(W, a, Ws, a_s)
    autograd_gap = max(float((Wg.grad - gW).abs().max() / gW.abs().max()),
                       float((ag.grad - ga).abs().max() / ga.abs().max()))
    w1, ws1 = _drawn_pairs(ctx, 16, 5, "reduce")
    g1 = theory.population_gradient(w1, ws1)
    gk, _ = theory.population_gradient_k(w1[:, None], None, ws1[:, None], None)
    reduce_gap = float((g1 - gk[:, 0]).abs().max())
    self_gap = float((theory.gate_correlation(w1, w1) - w1 / 2).abs().max())

    constant = ctx.perturb("1/(2pi)", WRONG_CONSTANT if ctx.power else theory.INV_2PI)
    samples = ctx.pick(20000, 200000)
    cases = ctx.pick(8, 32)

    def draws():
        out = []
        for K, M, d in ((2, 2, 4), (3, 2, 5), (2, 4, 6)):
            s = _streams(ctx, cases, f"mc-K{K}-M{M}")
            Wm, am = s.normal("mc-W", d, (K, d)), s.normal("mc-a", d, (K,))
            Wsm, asm = s.normal("mc-Ws", d, (M, d)), s.normal("mc-as", d, (M,))
            out.append((Wm, am, Wsm, asm, population.monte_carlo_population_gradient_k(
                Wm, am, Wsm, asm, samples=samples, seed=_seed(ctx, f"mc-samples-K{K}-M{M}"))))
        return out

    est, ses, ths = [], [], []
    for Wm, am, Wsm, asm, mc in ctx.memo("mc", draws):
        tW, ta = theory.population_gradient_k(Wm, am, Wsm, asm, constant=constant)
        est += [mc["W"].numpy().ravel(), mc["a"].numpy().ravel()]
        ses += [mc["W_se"].numpy().ravel(), mc["a_se"].numpy().ravel()]
        ths += [tW.numpy().ravel(), ta.numpy().ravel()]
    est, se, th = (np.concatenate(v) for v in (est, ses, ths))
    mc = se_verdict(est, th, se, z=ctx.z, what="MC mean gradient component")

    figure = None
    path = ctx.figure_path("relu.population-gradient-k")
    if path is not None:
        fig, ax = plt.subplots(figsize=(5.2, 4.2))
        scatter_vs_theory(ax, th, est, se, f"K-node gradient (W and a), {samples} samples per case"
                          + power_suffix(ctx, "1/pi"))
        figure = finish_figure(fig, path)

    exact_tol = 1e-10
    return combine(
        [mc], f"MC: |mean - formula| <= {ctx.z:g} SE per component; exact identities to {exact_tol:g}",
        f"autograd of the K-node loss {autograd_gap:.1e}; K=1 reduction {reduce_gap:.1e}; h(w,w)=w/2 "
        f"{self_gap:.1e}; {mc.message}" + power_suffix(ctx, "1/pi"),
        conditions=autograd_gap <= exact_tol and reduce_gap <= exact_tol and self_gap <= exact_tol,
        details={"autograd_gap": autograd_gap, "reduce_gap": reduce_gap, "mc_components": int(est.size),
                 "samples": samples, "constant": constant},
        figure=figure,
    )


# -- relu.lyapunov ---------------------------------------------------------------------------


def _lyapunov_exact(ctx: CheckContext):
    """The parts of relu.lyapunov that no theory constant under mutation touches (computed once)."""
    grid = ctx.pick(200, 600)
    inside = theory.lyapunov_plane_minimum(grid)
    outside = theory.lyapunov_plane_minimum(grid, region="annulus")

    # gradient descent from starts in Omega (d = 6)
    d, n = 6, ctx.pick(64, 512)
    streams = _streams(ctx, n, "omega")
    w_star = torch.zeros(d, dtype=torch.float64)
    w_star[0] = 1.0
    direction = streams.normal("omega-dir", 0, (d,))
    direction = direction / direction.norm(dim=-1, keepdim=True)
    w = w_star + direction * 0.999 * streams.uniform("omega-r", 0, (1,)) ** (1.0 / d)
    dist = [(w - w_star).norm(dim=-1)]
    for _ in range(ctx.pick(400, 1500)):
        w = w - 0.5 * theory.population_gradient(w, w_star)
        dist.append((w - w_star).norm(dim=-1))
    dist = torch.stack(dist, -1)
    monotone = bool((dist[:, 1:] <= dist[:, :-1] * (1 + 1e-12)).all())
    final_dist = float(dist[:, -1].max())

    # initialisation probability
    dims = (1, 2, 3, 5, 10, 30, 100, 1000, 10000) if ctx.full else (1, 2, 3, 5, 10, 100, 1000, 10000)
    epss = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
    margins, twin_gap = [], 0.0
    for dd in dims:
        for eps in epss:
            rho = theory.init_radius(dd, eps)
            p = theory.init_in_omega_probability(dd, rho)
            margins.append(p - (1 - eps) / 2)
            if dd >= 2:
                twin_gap = max(twin_gap, abs(p - theory.init_in_omega_probability_quadrature(dd, rho)))
    min_margin = float(min(margins))
    return inside, outside, n, monotone, final_dist, min_margin, twin_gap


def check_lyapunov(ctx: CheckContext) -> Verdict:
    """(a) min over Omega of (w - w*).E grad J / ||w - w*||^2 > 0 (polar grid of the plane of w, w*,
    refined by SLSQP; by scale invariance w* = e_1 covers every case); (b) population-gradient descent
    from random starts in Omega reaches w* with ||w_t - w*|| decreasing at every step; (c) the exact
    probability that a uniform start in the ball of radius eps sqrt(2 pi/(d+1)) ||w*|| lies in Omega
    (spherical caps) equals a quadrature twin and is >= (1 - eps)/2 on a (d, eps) grid; (d) Monte Carlo
    frequencies match the exact probability within z SE (power: radius constant 2 pi -> pi)."""
    inside, outside, n, monotone, final_dist, min_margin, twin_gap = ctx.memo("exact", lambda: _lyapunov_exact(ctx))
    radius_constant = ctx.perturb("radius-2pi", math.pi if ctx.power else 2 * math.pi)
    mc_samples = ctx.pick(40000, 400000)
    mc_cases = [(2, 0.5), (5, 0.25), (20, 1.0), (50, 0.1)]
    frequencies = ctx.memo("mc", lambda: [population.monte_carlo_init_in_omega(
        dd, theory.init_radius(dd, eps), samples=mc_samples, seed=_seed(ctx, f"omega-mc-{i}"))
        for i, (dd, eps) in enumerate(mc_cases)])
    est, se, th = [], [], []
    for (freq, s), (dd, eps) in zip(frequencies, mc_cases):
        est.append(freq)
        se.append(s)
        th.append(theory.init_in_omega_probability(dd, theory.init_radius(dd, eps, constant=radius_constant)))
    mc = se_verdict(np.array(est), np.array(th), np.array(se), z=ctx.z, what="MC frequency in Omega")

    figure = None
    path = ctx.figure_path("relu.lyapunov")
    if path is not None:
        fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.2))
        r, phi, val = inside["r"], inside["phi"], inside["value"]
        sc = axes[0].pcolormesh(r * np.cos(phi), r * np.sin(phi), val, cmap="viridis", shading="gouraud")
        fig.colorbar(sc, ax=axes[0], label=r"$(w-w^*)\cdot E\nabla J/\|w-w^*\|^2$")
        axes[0].plot([1], [0], "r*", ms=10)
        axes[0].set_aspect("equal")
        axes[0].set_title(f"Omega (w* = e1): min = {inside['minimum']:.3f}", fontsize=9)
        eps_grid = np.linspace(0.01, 1, 60)
        for dd in (2, 10, 100, 10000):
            axes[1].plot(eps_grid, [theory.init_in_omega_probability(dd, theory.init_radius(dd, e)) for e in eps_grid],
                         label=f"d = {dd}")
        axes[1].plot(eps_grid, (1 - eps_grid) / 2, "k--", label="(1 - eps)/2")
        style_axes(axes[1], "eps", "P(uniform init in Omega)", "init ball radius eps sqrt(2 pi/(d+1)) ||w*||",
                   title_size=9)
        figure = finish_figure(fig, path)

    return bound_verdict(
        inside["minimum"], 0.0,
        "min over Omega of (w-w*).E grad J/||w-w*||^2 must be > 0; also: P(init in Omega) - (1-eps)/2 "
        f">= 0 on the grid, exact vs quadrature <= 1e-9, MC within {ctx.z:g} SE",
        f"min over Omega {inside['minimum']:.4f} at (r, phi) = ({inside['argmin'][0]:.3g}, "
        f"{inside['argmin'][1]:.3g}) (the infimum 1/4 is approached as w -> 0 at theta = pi/2); outside Omega "
        f"min {outside['minimum']:.3g} ({outside['negative_fraction']:.0%} negative); GD from {n} starts in "
        f"Omega: monotone {monotone}, max final distance {final_dist:.1e}; init bound: min margin "
        f"{min_margin:.2e} (tight to first order in eps as d grows), exact vs quadrature {twin_gap:.1e}; "
        f"{mc.message}" + power_suffix(ctx, "radius constant pi"),
        above=True, conditions=monotone and final_dist < 1e-6 and min_margin >= 0 and twin_gap <= 1e-9 and mc.ok,
        details={"omega_minimum": inside["minimum"], "outside_minimum": outside["minimum"],
                 "outside_negative_fraction": outside["negative_fraction"], "gd_monotone": monotone,
                 "gd_final_distance": final_dist, "init_min_margin": min_margin, "init_twin_gap": twin_gap,
                 "mc_estimates": est, "mc_theory": th},
        figure=figure,
    )


# -- relu.symmetry-breaking ------------------------------------------------------------------


def _hessian_min_eig(W: torch.Tensor, W_star: torch.Tensor) -> float:
    K, d = W.shape

    def grad(flat):
        return theory.population_gradient_k(flat.reshape(K, d), None, W_star, None)[0].reshape(-1)

    H = torch.autograd.functional.jacobian(grad, W.reshape(-1))
    return float(torch.linalg.eigvalsh((H + H.T) / 2)[0])


def check_symmetry_breaking(ctx: CheckContext) -> Verdict:
    """Orthonormal teacher w*_j = e_j, a = a* = 1, population-gradient descent (lr 2/K).
    (a) sympy and numerics: the printed x* is a critical point (gradient <= 1e-12), and a saddle
    (negative Hessian eigenvalue); (b) symmetric starts stay in the (x, y) family and x0 = y0 converges
    to x*; (c) x0 = y0 + delta, delta = +1e-6: converges to w*; (d) delta = -1e-6 and generic random
    perturbations of size 1e-6: does it reach w* up to a permutation (loss < 1e-10)?"""
    import sympy as sp

    _, _, sym_gap = theory.symbolic_symmetric_fixed_point()
    Ks = (2, 3, 4, 5, 8, 10) if ctx.full else (2, 3, 5, 10)
    seeds = ctx.pick(8, 32)
    steps = ctx.pick(2500, 6000)
    rows = {}
    trajectories = {}
    worst_fixed, worst_sym, worst_plus = 0.0, 0.0, 0.0
    failures = []
    for K in Ks:
        eye = torch.eye(K, dtype=torch.float64)
        xs = ctx.perturb("x*", theory.symmetric_fixed_point(K))
        fixed = theory.symmetric_start(K, xs, xs)
        grad_at_fixed = float(theory.population_gradient_k(fixed, None, eye, None)[0].abs().max())
        saddle_eig = _hessian_min_eig(fixed, eye)
        noise = _streams(ctx, seeds, "perturb").normal("perturb", K, (K, K)) * 1e-6
        starts = torch.cat([theory.symmetric_start(K, 0.1, 0.1)[None], theory.symmetric_start(K, 0.1 + 1e-6, 0.1)[None],
                            theory.symmetric_start(K, 0.1 - 1e-6, 0.1)[None],
                            theory.symmetric_start(K, 0.1, 0.1) + noise])
        tr = ctx.memo(("gd", K), lambda starts=starts, eye=eye, K=K: population.population_gradient_descent(
            starts, eye, lr=2.0 / K, steps=steps, record_every=max(1, steps // 500)))
        x, y, off = theory.symmetric_coordinates(tr["W"])
        loss = tr["loss"][:, -1]
        sym_off = float(off[:3, :].amax())  # the three symmetric-family starts stay symmetric ...
        sym_off_sym = float(off[0].amax())
        plus_ok = bool(loss[1] < 1e-10 and abs(float(x[1, -1]) - 1) < 1e-6 and abs(float(y[1, -1])) < 1e-6)
        to_saddle = abs(float(x[0, -1]) - xs) + abs(float(y[0, -1]) - xs)
        minus_loss = float(loss[2])
        generic = loss[3:]
        generic_ok = int((generic < 1e-10).sum())
        stuck = [float(v) for v in generic[generic >= 1e-10]]
        stuck_eigs = [(_hessian_min_eig(tr["W"][3 + i, -1], eye))
                      for i in range(generic.shape[0]) if generic[i] >= 1e-10][:3]
        worst_fixed = max(worst_fixed, grad_at_fixed)
        worst_sym = max(worst_sym, sym_off_sym)
        worst_plus = max(worst_plus, 0.0 if plus_ok else 1.0)
        rows[K] = {"x_star": xs, "grad_at_x_star": grad_at_fixed, "hessian_min_eig_at_x_star": saddle_eig,
                   "symmetric_start_distance_to_x_star": to_saddle, "symmetric_start_left_family": sym_off_sym,
                   "x0>y0_reaches_w_star": plus_ok, "x0<y0_final_loss": minus_loss,
                   "x0<y0_final_xy": (float(x[2, -1]), float(y[2, -1])), "x0<y0_left_family": float(off[2, -1]),
                   "generic_reached_global_min": f"{generic_ok}/{seeds}", "generic_stuck_losses": stuck,
                   "generic_stuck_hessian_min_eig": stuck_eigs, "family_max_offset_x0!=y0": sym_off}
        if minus_loss >= 1e-10:
            failures.append(f"K={K}: x0<y0 ends at (x, y) = ({float(x[2, -1]):.3f}, {float(y[2, -1]):.3f}), loss "
                            f"{minus_loss:.3g}")
        if generic_ok < seeds:
            failures.append(f"K={K}: {seeds - generic_ok}/{seeds} generic perturbations end at loss "
                            f"{min(stuck):.3g}-{max(stuck):.3g} (Hessian min eig {min(stuck_eigs):.2g})")
        trajectories[(K, "x0 = y0")] = {"W": tr["W"][:1]}
        trajectories[(K, "x0 = y0 + 1e-6")] = {"W": tr["W"][1:2]}
        trajectories[(K, "x0 = y0 - 1e-6")] = {"W": tr["W"][2:3]}
        trajectories[(K, "generic 1e-6")] = {"W": tr["W"][3:]}

    figure = None
    path = ctx.figure_path("relu.symmetry-breaking")
    if path is not None:
        from teachtheory.teacher_student import figure_symmetric_dynamics

        (written,) = figure_symmetric_dynamics(trajectories, path, ("png",),
                                               title="relu.symmetry-breaking: (x, y) of population GD, lr 2/K")
        figure = str(written)

    printed_ok = (sym_gap == 0 and worst_fixed <= 1e-12
                  and all(r["hessian_min_eig_at_x_star"] < 0 for r in rows.values()))
    core_ok = printed_ok and worst_sym <= 1e-10 and worst_plus == 0 and all(
        r["symmetric_start_distance_to_x_star"] < 1e-6 for r in rows.values())
    corrected = ("x* is exact and a saddle; the symmetric family is invariant; breaking x = y towards the diagonal "
                 "(x0 > y0) reaches w*; but not every infinitesimal asymmetry does: " + "; ".join(failures)) \
        if failures else "every tested asymmetry reaches w* up to permutation"
    return conclude(
        outcome(core_ok and not failures, corrected=core_ok), worst_fixed, 1e-12,
        "max |E grad| at the printed x* <= 1e-12 (sympy gap 0); symmetric family kept to 1e-10; "
        "'reaches w*' = population loss < 1e-10",
        f"sympy: solve - printed = {sp.simplify(sym_gap)}; " + corrected,
        details={"per_K": rows, "steps": steps, "generic_seeds": seeds,
                 "corrected_statement": corrected if failures else None},
        figure=figure,
    )


# -- relu.recursive-gradient -------------------------------------------------------------------------


def random_relu_pair(ctx: CheckContext, teacher_widths, multi: int, runs: int, tag: str, dtype=torch.float64):
    """A random teacher (widths d, m_1, ..., c) and an over-realised student (multi x every hidden width), R runs:
    weights N(0, 1/fan-in), biases N(0, 0.3^2), from run streams hashed from (--seed, tag)."""
    streams = _streams(ctx, runs, tag)

    def draw(widths, name):
        layers = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            W = streams.normal(f"{tag}-{name}-W{i}", 0, (a, b), dtype=dtype) / math.sqrt(a)
            layers.append((W, 0.3 * streams.normal(f"{tag}-{name}-b{i}", 0, (b,), dtype=dtype)))
        return layers

    student_widths = (teacher_widths[0], *(multi * m for m in teacher_widths[1:-1]), teacher_widths[-1])
    return draw(teacher_widths, "teacher"), draw(student_widths, "student"), streams


def autograd_node_gradients(teacher, student, X: torch.Tensor):
    """-d loss / d pre-activation per hidden layer and -d(mean loss)/d[W; b] per layer, by autograd (the
    independent side of relu.recursive-gradient): per-sample loss 1/2 ||f*(x) - f(x)||^2, linear output."""
    with torch.enable_grad():
        params = [(W.clone().requires_grad_(True), b.clone().requires_grad_(True)) for W, b in student]
        pres, f = [], X
        for W, b in params[:-1]:
            pre = f @ W + b[:, None]
            pres.append(pre)
            f = torch.relu(pre)
        out = f @ params[-1][0] + params[-1][1][:, None]
        f_star = X
        for W, b in teacher[:-1]:
            f_star = torch.relu(f_star @ W + b[:, None])
        out_star = f_star @ teacher[-1][0] + teacher[-1][1][:, None]
        loss = 0.5 * ((out_star - out) ** 2).sum(-1)
        node = torch.autograd.grad(loss.sum(), pres, retain_graph=True)
        flat = [p for layer in params for p in layer]
        weight = torch.autograd.grad(loss.mean(1).sum(), flat)
    return [-g for g in node], [(-weight[2 * i], -weight[2 * i + 1]) for i in range(len(params))]


def _relu_recursion_parts(ctx: CheckContext) -> list[dict]:
    """Per depth: the random pair, inputs, autograd's gradients and the samples sharing a gating pattern."""
    cases = []
    n = ctx.pick(400, 4000)
    for widths in ((8, 6, 4), (8, 6, 5, 4), (10, 8, 6, 5, 3)):
        teacher, student, streams = random_relu_pair(ctx, widths, 2, ctx.pick(4, 16), f"lemma1-{len(widths)}")
        X = streams.normal(f"lemma1-x-{len(widths)}", 0, (n, widths[0]), dtype=torch.float64)
        node, weight = autograd_node_gradients(teacher, student, X)
        # a second point in the same activation region of every node: x + 1e-9 u (gates checked below)
        X2 = X + 1e-9 * streams.normal(f"lemma1-dx-{len(widths)}", 0, (n, widths[0]), dtype=torch.float64)
        cases.append({"widths": widths, "teacher": teacher, "student": student, "X": X, "X2": X2, "node": node,
                      "weight": weight})
    return cases


def check_recursive_gradient(ctx: CheckContext) -> Verdict:
    """Random teacher-student ReLU networks with biases (2, 3 and 4 layers, student 2x over-realised, float64):
    (a) the lemma's D_l (A_l f*_l - B_l f_l), with A_l, B_l built by the recursion, equals autograd's
    back-propagated gradient at every hidden node and sample (relative error); (b) the weight update
    E_x[f_{l-1} g_l^T] from it equals -d E loss / d W_l by autograd; (c) A_l and B_l are piecewise constant: at
    x + 1e-9 u, wherever no gate (teacher or student) flips, they are bitwise equal. Mutations: A_l or B_l scaled."""
    scale_A = ctx.perturb("A_l", 1.0)
    scale_B = ctx.perturb("B_l", 1.0)
    rows, node_gap, weight_gap, region_gap, same_region = [], 0.0, 0.0, 0.0, 0
    for case in ctx.memo("cases", lambda: _relu_recursion_parts(ctx)):
        out = theory.recursive_gradient(case["teacher"], case["student"], case["X"], scale_A=scale_A, scale_B=scale_B)
        gaps = [float((g - a).abs().max() / a.abs().max()) for g, a in zip(out["g"], case["node"])]
        wgaps = []
        f_prev = [theory._augment(case["X"])] + out["f"][:-1]
        for l, g in enumerate(out["g"]):
            update = torch.einsum("rni,rnj->rij", f_prev[l], g) / g.shape[1]  # E_x[f~_{l-1} g_l^T]: [W; b]
            W_ref, b_ref = case["weight"][l]
            ref = torch.cat([W_ref, b_ref[:, None]], 1)
            wgaps.append(float((update - ref).abs().max() / ref.abs().max()))
        out2 = theory.recursive_gradient(case["teacher"], case["student"], case["X2"])
        same = torch.ones(out["D"][0].shape[:2], dtype=torch.bool)
        for key in ("D", "D_star"):
            for a, b in zip(out[key], out2[key]):
                same &= (a == b).all(-1)
        for key in ("A", "B"):
            for a, b in zip(out[key], out2[key]):
                region_gap = max(region_gap, float((a - b).abs().amax((-1, -2))[same].max()))
        same_region += int(same.sum())
        node_gap, weight_gap = max(node_gap, *gaps), max(weight_gap, *wgaps)
        rows.append({"widths": case["widths"], "node_gradient_rel_error": gaps, "weight_update_rel_error": wgaps})
    tol = 1e-12
    return bound_verdict(
        max(node_gap, weight_gap), tol,
        f"max relative error of the lemma's gradient and weight update against autograd <= {tol:g} (float64 "
        "rounding); A, B bitwise equal within an activation region",
        f"g_l = D_l(A_l f*_l - B_l f_l) vs autograd: max rel. error {node_gap:.1e} over {len(rows)} depths "
        f"(2-4 layers, biases, student 2x); weight update E[f g^T] vs autograd {weight_gap:.1e}; A, B at "
        f"x + 1e-9 u in the same region ({same_region} samples): max change {region_gap:.1e}",
        conditions=region_gap == 0.0 and same_region > 0,
        details={"per_depth": rows, "same_region_samples": same_region, "region_change": region_gap,
                 "scale_A": scale_A, "scale_B": scale_B},
    )


register_table(__name__, globals())
