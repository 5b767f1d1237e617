"""Claims of L2T-DLN (Hai et al., NeurIPS 2023) on alternating gradient descent at a strict saddle (Conclusion 1).

The paper's hypergradient claims are the ``l2t`` family (:mod:`proofs_checks.l2t`).

References:
    Hai et al., "L2T-DLN: Learning to Teach with Dynamic Loss Network", NeurIPS 2023.
    Lu, Hong & Wang, arXiv:1802.10418 (2018) (the AGD saddle analysis Conclusion 1 follows).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from teachtheory.claims import CheckContext, Verdict, bound_verdict, mean_se, register_table
from teachtheory.plotting import finish_figure, plt, se_band, style_axes
from teachtheory.random import RunStreams, as_seeds
from teachtheory.theory import agd as theory

__all__ = ["check_agd_saddle", "draw_saddle_cases"]


# -- agd.saddle -----------------------------------------------------------------------------

BLOCKS = ((1, 1), (1, 2), (2, 1), (2, 2), (3, 2), (2, 4), (4, 4), (6, 3))
COUPLINGS = (1.0, 1.0, 0.3, 1e-2, 1e-4, 0.0)  # scale of the off-diagonal block; 0 = decoupled (bound tight)


def draw_saddle_cases(n1: int, n2: int, count: int, seed: int, eta_range: tuple[float, float],
                      dtype=torch.float64) -> dict[str, torch.Tensor]:
    """``count`` symmetric H with a strict saddle (lambda_min < 0), blocks n1 + n2, and step sizes
    eta = f / L_max with f ~ U(eta_range).

    Spectra: eigenvalues ~ N(0, 1) times a log-uniform scale in [1e-2, 1e2], one forced negative; a
    random rotation couples the blocks, and the off-diagonal block is then scaled by a coupling in
    COUPLINGS (0 gives the decoupled, tight case).
    """
    n = n1 + n2
    streams = RunStreams(as_seeds(seed, count))
    Q, _ = torch.linalg.qr(streams.normal("agd/Q", 0, (n, n), dtype=dtype))
    scale = torch.exp(math.log(100.0) * (2 * streams.uniform("agd/scale", 0, (1,), dtype=dtype) - 1))
    spec = streams.normal("agd/spec", 0, (n,), dtype=dtype) * scale
    spec[:, 0] = -spec[:, 0].abs() - 1e-3 * scale[:, 0]
    H = Q @ torch.diag_embed(spec) @ Q.transpose(-1, -2)
    couple = torch.tensor(COUPLINGS, dtype=dtype)[streams.integers("agd/couple", 0, len(COUPLINGS), (1,))[:, 0]]
    H[:, :n1, n1:] *= couple[:, None, None]
    H[:, n1:, :n1] *= couple[:, None, None]
    H = (H + H.transpose(-1, -2)) / 2
    consts = theory.block_constants(H, n1)
    keep = consts["gamma"] > 1e-9 * consts["L"]  # a strict saddle after the coupling rescale
    H = H[keep]
    consts = {k: v[keep] for k, v in consts.items()}
    lo, hi = eta_range
    f = lo + (hi - lo) * streams.uniform("agd/eta", 0, (1,), dtype=dtype)[keep, 0]
    eta = f / consts["L_max"]
    return {"H": H, "eta": eta, "f": f, **consts}


def _evaluate(cases: dict, split: int, power: bool, term_factor: float = 1.0,
              sharp_factor: float = 1.0) -> dict[str, torch.Tensor]:
    """The escape eigenvalue of every drawn case, its margins over the bounds, and the eigensolver's tolerances.

    ``term_factor`` scales the printed bound's term eta gamma/(1 + L/L_max), ``sharp_factor`` the derived sharp
    bound's eta gamma (sensitivity runs)."""
    H, eta, gamma, L, L_max = (cases[k] for k in ("H", "eta", "gamma", "L", "L_max"))
    eig = theory.escape_eigenvalue(H, split, eta)
    printed = 1 + term_factor * (theory.printed_escape_bound(eta, gamma, L, L_max) - 1)
    sharp = 1 + sharp_factor * (theory.sharp_escape_bound(eta, gamma) - 1)
    claimed = sharp + 0.05 * eta * gamma if power else printed  # power: a 5% stronger constant than the sharp one
    u = torch.finfo(H.dtype).eps
    n = H.shape[-1]
    rounding = 100 * n * u * eig["scale"]  # backward-stable eigensolver: |d lambda| <~ n u ||T|| (simple eigenvalues)
    return {
        "lambda_max": eig["lambda_max"], "max_imag": eig["max_imag"], "scale": eig["scale"],
        "margin": eig["lambda_max"] - claimed,
        "norm_margin": (eig["lambda_max"] - claimed) / (eta * gamma),
        "ratio": (eig["lambda_max"] - 1) / (printed - 1),
        "sharp_slack": (eig["lambda_max"] - sharp + rounding) / (eta * gamma),
        "rounding": rounding,
        "imag_tol": 1e2 * math.sqrt(u) * eig["scale"],  # a nearly defective pair splits by O(sqrt(u ||T||))
    }


def _adversarial_min_ratio(seed: int, starts: int, iterations: int) -> dict:
    """Nelder-Mead on the entries of H (n = 3, split 1 and n = 4, split 2) and on eta L_max in (0, 1),
    minimising (lambda_max - 1) / (printed bound - 1); theory: >= 1 + L/L_max >= 2."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(seed)
    best = {"ratio": math.inf}
    for n, split in ((3, 1), (4, 2)):
        iu = np.triu_indices(n)

        def objective(z, n=n, split=split, iu=iu):
            M = np.zeros((n, n))
            M[iu] = z[:-1]
            M = M + M.T - np.diag(np.diag(M))
            H = torch.tensor(M)
            c = theory.block_constants(H, split)
            if float(c["gamma"]) <= 1e-8 or float(c["L_max"]) <= 1e-12:
                return 1e6
            f = 1 / (1 + math.exp(-z[-1]))
            eta = f / float(c["L_max"])
            lam = float(theory.escape_eigenvalue(H, split, eta)["lambda_max"])
            printed = float(theory.printed_escape_bound(eta, c["gamma"], c["L"], c["L_max"]))
            return (lam - 1) / (printed - 1)

        for _ in range(starts):
            z0 = np.concatenate([rng.normal(size=len(iu[0])), [rng.normal()]])
            res = minimize(objective, z0, method="Nelder-Mead", options={"maxiter": iterations, "xatol": 1e-10,
                                                                          "fatol": 1e-12})
            if res.fun < best["ratio"]:
                best = {"ratio": float(res.fun), "n": n, "split": split, "evaluations": int(res.nfev)}
    return best


def _saddle_figure(ctx: CheckContext, sim: dict, lam: float, printed: float, sharp: float, lr: float,
                   f_min: float, scatter: dict) -> str | None:
    """Eigenvalue excess against L/L_max over the draws; PA-GD's distance and objective against the sweeps."""
    path = ctx.figure_path("agd.saddle")
    if path is None:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    # (a) the eigenvalue excess over the printed and the sharp bound
    ax = axes[0]
    x, y = scatter["L_over_Lmax"], scatter["excess"]
    ax.scatter(x, y, s=4, alpha=0.4, color="C0", label=r"draws, $\eta < 1/L_{\max}$")
    if scatter["far_x"].size:
        ax.scatter(scatter["far_x"], scatter["far_y"], s=4, alpha=0.4, color="C3",
                   label=r"$\eta \geq 1/L_{\max}$ with complex eigenvalues (largest real part)")
    grid = np.geomspace(1.0, max(2.0, float(x.max())), 200)
    ax.plot(grid, 1.0 / (1.0 + grid), "r-", lw=1.5, label=r"printed: $1/(1+L/L_{\max})$")
    ax.axhline(1.0, color="g", ls="--", lw=1.5, label=r"derived sharp: 1")
    style_axes(ax, r"$L/L_{\max}$", r"$(\lambda_{\max}(M^{-1}G) - 1)/(\eta\gamma)$", "escape eigenvalue vs the bounds",
               legend=7, grid="both", xscale="log", yscale="log")
    # (b) PA-GD distance to the saddle
    dist, value = sim["distance"].numpy()[:, 1:], sim["value"].numpy()
    R, T = dist.shape
    k = np.arange(1, T + 1)
    mean, se = mean_se(np.log10(np.maximum(dist, 1e-300)))
    ax = axes[1]
    se_band(ax, k, mean, se, label=f"PA-GD, R={R} (mean ± SE)", lw=1.6)
    k0 = int(np.median(sim["first_perturbation"].numpy())) + 20
    anchor = mean[k0 - 1]
    kk = k[k0 - 1:]
    for rate, style, label in ((lam, "k--", r"$\lambda_{\max}(M^{-1}G)^k$"),
                               (sharp, "g:", r"$(1+\eta\gamma)^k$ (derived sharp bound)"),
                               (printed, "r:", r"$(1+\eta\gamma/(1+L/L_{\max}))^k$ (printed bound)")):
        ax.plot(kk, anchor + (kk - k0) * math.log10(rate), style, lw=1.2, label=label)
    ax.set_ylim(mean.min() - 0.5, max(0.5, mean.max() + 0.5))
    style_axes(ax, "AGD sweep k", r"mean $\log_{10}\|v_k - v^*\|$", "PA-GD leaves the saddle at the predicted rate",
               legend=7)
    # (c) objective value
    ax = axes[2]
    se_band(ax, np.arange(value.shape[1]), *mean_se(value), label="PA-GD (mean ± SE)", lw=1.6)
    ax.axhline(0.0, color="grey", lw=1, label="f at the saddle (plain AGD started there stays)")
    ax.axhline(f_min, color="k", ls="--", lw=1, label=r"$\min f = -\gamma^2/(4\rho)$")
    style_axes(ax, "AGD sweep k", r"$f(v_k)$", legend=7)
    return finish_figure(fig, path, title=f"agd.saddle: M^-1 G eigenvalues over random draws; perturbed AGD on "
                         f"f = v'Hv/2 + rho|v|^4/4 (n=10, blocks 5+5, eta = {lr:.3g} = 0.9/L_max)")


def check_agd_saddle(ctx: CheckContext) -> Verdict:
    """(1) sympy, scalar blocks: the discriminant is (p-q)^2 + r^2 + 2r(p+q) (>= 0 when eta a, eta c <= 1),
    det(G - lam M) = det((1-lam)I - eta S(lam)), and the charpoly at 1 + eta gamma is -eta^3 b^2 gamma <= 0.
    (2) Batched draws over block sizes, spectra (log-uniform scales, couplings down to decoupled) and
    eta = f/L_max, f ~ U(0, 1): eigenvalues real (|Im| below the eigensolver's error), the printed bound
    and the derived sharp bound 1 + eta gamma. Smallest margins reported; Nelder-Mead adversarial
    search for the smallest (lambda_max - 1)/(printed - 1). (3) eta >= 1/L_max: complex pairs
    (counterexamples counted, an explicit one built); does the bound survive? (4) PA-GD escaping a
    strict saddle: measured growth rate of ||v_k|| vs log lambda_max(M^{-1}G).
    Power: the bound 1 + 1.05 eta gamma (5% above the sharp constant) must fail."""
    import sympy as sp

    sym = theory.symbolic_agd_2x2()
    symbolic_ok = all(sp.simplify(sym[k]) == 0 for k in ("identity", "similarity", "at_sharp_identity"))

    count = ctx.pick(1500, 20000)
    inside, outside = [], []
    worst = {"norm_margin": math.inf, "margin": math.inf, "ratio": math.inf, "sharp_slack": math.inf,
             "imag": 0.0}
    worst_case = {}
    per_block = {}
    scatter = {"L_over_Lmax": [], "excess": [], "far_x": [], "far_y": []}
    for b, (n1, n2) in enumerate(BLOCKS):
        cases = draw_saddle_cases(n1, n2, count, ctx.seed * 1000 + b, (0.0, 1.0))
        ev = _evaluate(cases, n1, ctx.power, ctx.perturb("printed-term", 1.0), ctx.perturb("sharp-term", 1.0))
        imag_excess = float((ev["max_imag"] / ev["imag_tol"]).max())
        i = int(torch.argmin(ev["norm_margin"]))
        per_block[f"{n1}+{n2}"] = {
            "cases": int(cases["H"].shape[0]), "min_norm_margin": float(ev["norm_margin"].min()),
            "min_margin": float(ev["margin"].min()), "min_ratio": float(ev["ratio"].min()),
            "min_sharp_slack": float(ev["sharp_slack"].min()), "max_imag": float(ev["max_imag"].max()),
        }
        if float(ev["norm_margin"][i]) < worst["norm_margin"]:
            worst_case = {"blocks": [n1, n2], "eta_L_max": float(cases["f"][i]), "gamma": float(cases["gamma"][i]),
                          "L": float(cases["L"][i]), "L_max": float(cases["L_max"][i]),
                          "lambda_max": float(ev["lambda_max"][i])}
        worst["norm_margin"] = min(worst["norm_margin"], float(ev["norm_margin"].min()))
        worst["margin"] = min(worst["margin"], float(ev["margin"].min()))
        worst["ratio"] = min(worst["ratio"], float(ev["ratio"].min()))
        worst["sharp_slack"] = min(worst["sharp_slack"], float(ev["sharp_slack"].min()))
        worst["imag"] = max(worst["imag"], imag_excess)
        inside.append(int(cases["H"].shape[0]))
        take = slice(0, 400)
        scatter["L_over_Lmax"].append((cases["L"] / cases["L_max"])[take].numpy())
        scatter["excess"].append(((ev["lambda_max"] - 1) / (cases["eta"] * cases["gamma"]))[take].numpy())
        # beyond the stated step size: eta in [1, 20] / L_max
        far = draw_saddle_cases(n1, n2, count // 2, ctx.seed * 1000 + 500 + b, (1.0, 20.0))
        evf = _evaluate(far, n1, False)
        complex_mask = evf["max_imag"] > evf["imag_tol"]
        sharp_real = far["eta"] * far["top"] < 1  # the one-sided reality condition
        scatter["far_x"].append((far["L"] / far["L_max"])[complex_mask][:200].numpy())
        scatter["far_y"].append(((evf["lambda_max"] - 1) / (far["eta"] * far["gamma"]))[complex_mask][:200].numpy())
        outside.append({"cases": int(far["H"].shape[0]), "complex": int(complex_mask.sum()),
                        "complex_when_eta_top_lt_1": int((complex_mask & sharp_real).sum()),
                        "printed_bound_fails": int((evf["margin"] <= 0).sum()),
                        "min_ratio": float(evf["ratio"].min())})
    adversarial = _adversarial_min_ratio(ctx.seed, ctx.pick(3, 12), ctx.pick(300, 2000))
    counter = theory.complex_counterexample()
    cev = counter["eigenvalues"]

    # (4) the PA-GD simulation
    from teachtheory.l2t.saddle import growth_rate, perturbed_agd, saddle_hessian

    gamma, L, rho = 0.5, 4.0, 1.0
    H = saddle_hessian(10, 5, gamma, L, seed=ctx.seed)
    consts = theory.block_constants(H, 5)
    lr = 0.9 / float(consts["L_max"])
    lam = float(theory.escape_eigenvalue(H, 5, lr)["lambda_max"])
    sim = perturbed_agd(H, 5, lr, ctx.pick(300, 600), ctx.pick(32, 256), rho=rho, seed=ctx.seed)
    rates = growth_rate(sim["distance"], sim["first_perturbation"], 1e-5, 1e-2 * math.sqrt(gamma / rho))
    f_min = -gamma**2 / (4 * rho)
    escaped = float((sim["value"][:, -1] < 0.5 * f_min).double().mean())
    rate_error = float(((rates - math.log(lam)) / math.log(lam)).abs().max())
    printed_rate = float(theory.printed_escape_bound(lr, consts["gamma"], consts["L"], consts["L_max"]))
    scatter = {k: np.concatenate(v) for k, v in scatter.items()}
    figure = _saddle_figure(ctx, sim, lam, printed_rate, 1 + lr * gamma, lr, f_min, scatter)

    total_out = sum(o["cases"] for o in outside)
    complex_out = sum(o["complex"] for o in outside)
    printed_out = sum(o["printed_bound_fails"] for o in outside)
    complex_sharp = sum(o["complex_when_eta_top_lt_1"] for o in outside)
    what = "bound 1 + 1.05 eta gamma [power]" if ctx.power else "printed bound 1 + eta gamma/(1 + L/L_max)"
    return bound_verdict(
        worst["norm_margin"], 0.0,
        "smallest (lambda_max(M^-1 G) - bound)/(eta gamma) over all draws must be > 0 (the claim is "
        "strict); |Im lambda| <= 100 sqrt(u) ||M^-1 G|| (eigensolver error on a near-double root)",
        (f"{sum(inside)} draws, eta < 1/L_max: smallest margin of the {what}: "
         f"{worst['norm_margin']:.3g} x eta gamma (absolute {worst['margin']:.2e}); smallest "
         f"(lambda_max - 1)/(printed - 1) = {worst['ratio']:.6f} (adversarial search {adversarial['ratio']:.6f}); "
         f"eigenvalues real (max |Im|/tol {worst['imag']:.2g}); derived sharp bound 1 + eta gamma: smallest "
         f"slack {worst['sharp_slack']:.2e} x eta gamma; sympy identities {'ok' if symbolic_ok else 'FAIL'}. "
         f"eta in [1, 20]/L_max: {complex_out}/{total_out} draws have complex eigenvalues (0 of them with "
         f"eta max(lambda_max(A), lambda_max(C)) < 1: {complex_sharp}), printed bound fails in {printed_out}; "
         f"PA-GD: {escaped:.0%} escaped, growth rate vs log lambda_max: max rel. error {rate_error:.1e}"),
        above=True, conditions=symbolic_ok and worst["imag"] <= 1.0 and worst["sharp_slack"] >= 0,
        details={
            "smallest_margin": {"normalised_by_eta_gamma": worst["norm_margin"], "absolute": worst["margin"],
                                "ratio_excess_over_printed": worst["ratio"], "at": worst_case},
            "per_block": per_block, "adversarial": adversarial, "sharp_bound_min_slack": worst["sharp_slack"],
            "sharper_form": r"\lambda_{\max}(M^{-1}G) \ge 1 + \eta\gamma\ \text{for every}\ \eta > 0\ "
                            r"(\text{equality iff the negative-curvature direction lies in one block}); "
                            r"\text{all eigenvalues real iff-sufficient: } "
                            r"\eta\max(\lambda_{\max}(A),\lambda_{\max}(C)) < 1",
            "beyond_step_size": {"per_block": dict(zip([f"{a}+{b}" for a, b in BLOCKS], outside)),
                                 "complex": complex_out, "cases": total_out, "printed_bound_fails": printed_out},
            "counterexample": {"H": counter["H"].tolist(), "split": 2, "eta": counter["lr"],
                               "eta_L_max": counter["factor"],
                               "eigenvalues": [[float(z.real), float(z.imag)] for z in cev],
                               "discriminant": counter["discriminant"]},
            "symbolic": {"discriminant_identity": str(sym["identity"]), "similarity": str(sym["similarity"]),
                         "charpoly_at_1_plus_eta_gamma": str(sym["at_sharp"])},
            "pagd": {"lr": lr, "lambda_max": lam, "log_lambda_max": math.log(lam),
                     "measured_rate_mean": float(np.nanmean(rates.numpy())), "max_rel_error": rate_error,
                     "escaped_fraction": escaped, "f_min": f_min, "runs": int(sim["distance"].shape[0])},
            "power": ctx.power,
        },
        figure=figure,
    )


register_table(__name__, globals())
