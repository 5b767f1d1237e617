r"""Standard and adversarial training of a student against a ReLU oracle, batched over runs.

The oracle f* is a random multi-layer ReLU teacher (:func:`teachtheory.teacher_student.make_teacher_network`)
built in the r-dimensional latent space of *low-rank* Gaussian input x = A z, z ~ N(0, sigma^2 I_r),
A [d, r] with orthonormal columns drawn per run (rank r = d is the full-rank control). Its first-layer
weights are w*_j = A u_j (+ an optional out-of-plane part, invisible on the data). The input plane is
span(A) with projector P = A A^T. Classes are the teacher's argmax over its K outputs.

Training regimes (:data:`REGIMES`), each with SGD + momentum on minibatches of a finite training set:

* ``"st"``: standard training on clean pairs (x, f*(x));
* ``"at"``: adversarial training on oracle pairs (x', f*(x')) with x' the oracle adversary of the current
  student (:func:`~teachtheory.adversarial.attacks.oracle_adversary`), optionally restricted to the input
  plane (``train_plane="in"``) or its complement (``"out"``);
* ``"ccat"``: confidence-calibrated adversarial training (Stutz, Hein & Schiele) with the oracle's label in
  place of the true one: half of each batch clean with one-hot targets, half adversarial (PGD in a ball of
  per-example radius eps_i ~ U(0, eps) from a random start, keeping each example's best iterate, maximising
  the largest non-target softmax probability) with targets
  :math:`\tilde y = \lambda(\delta)\,\mathrm{onehot}(y) + (1 - \lambda(\delta))/K`,
  :math:`\lambda(\delta) = (1 - \min(1, \|\delta\|_\infty/\epsilon))^\rho`.

``target="logit"`` minimises :math:`\tfrac12\|f(x) - f^*(x)\|^2`, ``target="label"`` the cross-entropy
with argmax f*(x) (CCAT always uses soft labels).

Measured on held-out data at every record: clean accuracy, robust accuracy against the oracle adversary
(argmax f(x') = argmax f*(x')) and the data adversary (cross-entropy ascent against the clean label;
argmax f(x') = argmax f*(x)); the first-layer best correlation per teacher node; and the empirical model
:math:`W_k = w^*_j + \epsilon_{in} u^{in}_k + \epsilon_{out} u^{out}_k` (:func:`plane_decomposition`).

References:
    Yang, Chen, Cai, Chen, Li & Tian, "Understanding Robustness in Teacher-Student Setting: A New
    Perspective", AISTATS 2021 (oracle vs data adversaries, logit vs label training, eps_in / eps_out); Tian's
    teacher-student talk, "Understanding Adversarial Samples using Teacher-Student". Stutz, Hein & Schiele,
    "Confidence-Calibrated Adversarial Training", ICML 2020. Madry et al., ICLR 2018.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .. import nets
from ..learners.updates import momentum_step
from ..random import RunStreams
from ..teacher_student import TeacherStudentConfig, activation_correlations, make_student_network, make_teacher_network
from ..teacher_student.training import Network, check_training_call
from ..threads import intra_op_threads
from .attacks import NORMS, data_adversary, logits, oracle_adversary, pgd

__all__ = [
    "PLANES",
    "REGIMES",
    "TARGETS",
    "AdversarialConfig",
    "AdversarialResult",
    "Oracle",
    "attack_matrix",
    "ccat_lambda",
    "make_oracle",
    "plane_decomposition",
    "plane_projector",
    "robust_accuracy",
    "train_adversarial",
]

REGIMES = ("st", "at", "ccat")
TARGETS = ("logit", "label")
PLANES = ("both", "in", "out")


@dataclass(frozen=True)
class AdversarialConfig:
    """One adversarial teacher-student experiment (configuration only).

    Attributes:
        input_dim: d. rank: r, the dimension of the input plane (None or d: full rank).
        teacher_widths: hidden widths of the oracle. output_dim: K classes. multi: student over-realisation.
        teacher_out_of_plane: norm of a random out-of-plane part added to each unit first-layer teacher
            weight (0: the oracle's weights lie in the plane).
        data_std: sigma of the latent z. train_size, eval_size: examples per run.
        batch_size, lr, momentum, epochs: SGD. record_every: epochs between records (and at 0 and the end).
        regime: "st", "at" or "ccat". target: "logit" or "label". train_plane: "both", "in" or "out" (AT).
        eps, norm: the threat model (radius, "linf" or "l2"), shared by training and evaluation.
        train_steps, attack_steps: PGD steps when training and when evaluating.
        rho: CCAT's exponent.
        augment: std of isotropic Gaussian noise added to every training input (labelled by the oracle at the
            noisy point; 0: none). It leaves the input plane, so it is the synthetic stand-in for data
            augmentation.
    """

    input_dim: int = 20
    rank: int | None = 5
    teacher_widths: tuple[int, ...] = (10,)
    output_dim: int = 10
    multi: int = 2
    teacher_out_of_plane: float = 0.0
    data_std: float = 1.0
    train_size: int = 1000
    eval_size: int = 500
    batch_size: int = 50
    lr: float = 0.05
    momentum: float = 0.9
    epochs: int = 20
    record_every: int = 5
    regime: str = "st"
    target: str = "logit"
    train_plane: str = "both"
    eps: float = 0.3
    norm: str = "linf"
    train_steps: int = 5
    attack_steps: int = 10
    rho: float = 10.0
    augment: float = 0.0

    def __post_init__(self) -> None:
        def integer(name, minimum=1):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")

        for name in ("input_dim", "output_dim", "multi", "train_size", "batch_size", "record_every"):
            integer(name)
        integer("eval_size", 2)
        for name in ("epochs", "train_steps", "attack_steps"):
            integer(name, 0)
        if self.rank is not None:
            integer("rank")
            if self.rank > self.input_dim:
                raise ValueError(f"rank must be at most input_dim = {self.input_dim} (or None), got {self.rank}")
        widths = tuple(self.teacher_widths)
        if not widths or any(isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1 for m in widths):
            raise ValueError("teacher_widths must be a non-empty tuple of positive integers, "
                             f"got {self.teacher_widths!r}")
        object.__setattr__(self, "teacher_widths", tuple(int(m) for m in widths))
        for name in ("lr", "data_std"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("eps", "teacher_out_of_plane", "rho", "augment"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        for name, allowed in (("regime", REGIMES), ("target", TARGETS), ("train_plane", PLANES), ("norm", NORMS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")

    @property
    def plane_rank(self) -> int:
        """r (d when the input is full rank)."""
        return self.input_dim if self.rank is None else int(self.rank)

    def to_dict(self) -> dict:
        """The fields as a plain dict."""
        return asdict(self)


@dataclass
class Oracle:
    """R oracles and their input planes.

    Attributes:
        teacher: the oracle networks (first layer in input coordinates). basis: A [R, d, r].
        plane: P = A A^T [R, d, d].
    """

    teacher: Network
    basis: torch.Tensor
    plane: torch.Tensor

    def sample(self, streams: RunStreams, tag: str, n: int, data_std: float) -> torch.Tensor:
        """x = A z with z ~ N(0, data_std^2 I_r): [R, n, d]."""
        z = streams.normal(tag, 0, (n, self.basis.shape[-1])).to(self.basis) * data_std
        return torch.matmul(z, self.basis.transpose(1, 2))


def plane_projector(basis: torch.Tensor) -> torch.Tensor:
    """P = A A^T [R, d, d] for an orthonormal basis A [R, d, r]."""
    return torch.matmul(basis, basis.transpose(1, 2))


def make_oracle(config: AdversarialConfig, streams: RunStreams, dtype=torch.float32, device="cpu") -> Oracle:
    """The oracles of R runs: a :mod:`teachtheory.teacher_student` teacher built on the r latent
    coordinates (biases calibrated there), its first layer lifted into R^d by the basis A."""
    d, r = config.input_dim, config.plane_rank
    latent = TeacherStudentConfig(input_dim=r, teacher_widths=config.teacher_widths, output_dim=config.output_dim,
                                  data_std=config.data_std)
    net = make_teacher_network(latent, streams, torch.float64)
    G = streams.normal("adv-basis", 0, (d, r))
    A, _ = torch.linalg.qr(G)  # orthonormal columns, one basis per run
    P = plane_projector(A)
    W1 = torch.matmul(A, net.weights[0])  # [R, d, m]: the teacher in input coordinates
    if config.teacher_out_of_plane > 0 and r < d:
        extra = streams.normal("adv-teacher-out", 0, (d, W1.shape[-1]))
        extra = extra - torch.matmul(P, extra)
        W1 = W1 + config.teacher_out_of_plane * extra / extra.norm(dim=1, keepdim=True).clamp_min(1e-30)
    weights = [W1, *net.weights[1:]]
    teacher = Network([w.to(dtype=dtype, device=device) for w in weights],
                      [b.to(dtype=dtype, device=device) for b in net.biases])
    return Oracle(teacher, A.to(dtype=dtype, device=device), P.to(dtype=dtype, device=device))


def plane_decomposition(student_W1: torch.Tensor, teacher_W1: torch.Tensor, plane: torch.Tensor,
                        match: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""eps_in and eps_out of the empirical model.

    The model is :math:`W_k = w^*_j + \epsilon_{in} u^{in}_k + \epsilon_{out} u^{out}_k`.

    Each weight vector is scaled by its in-plane norm (what the data see: a node's positive scale is
    absorbed by its fan-out), then the deviation Delta = w_k/||P w_k|| - w*_j/||P w*_j|| of student node k
    from its matched teacher node j is split into P Delta (in the data span) and (I - P) Delta.

    Args:
        student_W1 [R, d, n], teacher_W1 [R, d, m], plane P [R, d, d].
        match: [R, m] index of the student node matched to each teacher node.

    Returns:
        (eps_in, eps_out), each [R, m].
    """
    idx = match[:, None, :].expand(-1, student_W1.shape[1], -1)
    w = torch.gather(student_W1, 2, idx)  # [R, d, m]

    def scaled(v):
        return v / torch.matmul(plane, v).norm(dim=1, keepdim=True).clamp_min(1e-30)

    delta = scaled(w) - scaled(teacher_W1)
    inside = torch.matmul(plane, delta)
    return inside.norm(dim=1), (delta - inside).norm(dim=1)


def ccat_lambda(delta: torch.Tensor, eps: float, rho: float) -> torch.Tensor:
    r"""CCAT's confidence weight :math:`\lambda(\delta) = (1 - \min(1, \|\delta\|_\infty/\epsilon))^\rho` per example.

    Maps delta [R, n, d] to [R, n].
    """
    if not (eps > 0):
        raise ValueError(f"eps must be positive for CCAT, got {eps!r}")
    size = delta.abs().amax(-1) / eps
    return (1.0 - size.clamp(max=1.0)) ** rho


def _plane_for(choice: str, P: torch.Tensor) -> torch.Tensor | None:
    if choice not in PLANES:
        raise ValueError(f"plane must be one of {', '.join(PLANES)}, got {choice!r}")
    if choice == "both":
        return None
    if choice == "in":
        return P
    return torch.eye(P.shape[-1], dtype=P.dtype, device=P.device) - P


def robust_accuracy(student: Sequence[nets.Layer], oracle: Oracle, X: torch.Tensor, *, eps: float,
                    norm: str = "linf", steps: int = 10, plane: str = "both") -> dict[str, torch.Tensor]:
    """Clean and robust accuracy per run [R] against the oracle and the data adversary.

    Args:
        student: the student's layers. X: held-out inputs [R, n, d].
        plane: restrict both attacks to "in" the input plane, "out" of it, or "both" (unrestricted).

    Returns:
        {"clean", "oracle", "data"}: fractions of examples classified as the oracle does (at x' for the
        oracle adversary, at the clean x for the data adversary).
    """
    teacher = oracle.teacher.layers()
    proj = _plane_for(plane, oracle.plane)
    with torch.no_grad():
        y_logit = logits(teacher, X)
        y = y_logit.argmax(-1)
        clean = (logits(student, X).argmax(-1) == y).to(torch.float64).mean(1)
    x_o = oracle_adversary(student, teacher, X, eps, norm=norm, steps=steps, plane=proj)
    x_d = data_adversary(student, X, y, eps, loss="ce", norm=norm, steps=steps, plane=proj)
    with torch.no_grad():
        acc_o = (logits(student, x_o).argmax(-1) == logits(teacher, x_o).argmax(-1)).to(torch.float64).mean(1)
        acc_d = (logits(student, x_d).argmax(-1) == y).to(torch.float64).mean(1)
    return {"clean": clean, "oracle": acc_o, "data": acc_d}


def attack_matrix(student: Sequence[nets.Layer], oracle: Oracle, X: torch.Tensor, *, eps: float,
                  norm: str = "linf", steps: int = 10) -> dict[str, dict[str, torch.Tensor]]:
    """Robust accuracy per run [R] under in-plane-only, out-of-plane-only and unrestricted attacks.

    Returns:
        {plane: {"oracle", "data"}} for plane in "in", "out", "both".
    """
    out = {}
    for plane in ("in", "out", "both"):
        acc = robust_accuracy(student, oracle, X, eps=eps, norm=norm, steps=steps, plane=plane)
        out[plane] = {"oracle": acc["oracle"], "data": acc["data"]}
    return out


@dataclass
class AdversarialResult:
    """What :func:`train_adversarial` measured (numpy, leading run axis R; T records).

    Attributes:
        epochs: [T]. clean_acc, robust_oracle, robust_data: [R, T].
        eps_in, eps_out: [R, T] mean over teacher nodes of the empirical-model components.
        best_corr: [R, T, m] first-layer best correlation per teacher node.
        extra: the final networks and the oracle when ``keep_networks``.
    """

    config: AdversarialConfig
    seeds: np.ndarray
    epochs: np.ndarray
    clean_acc: np.ndarray
    robust_oracle: np.ndarray
    robust_data: np.ndarray
    eps_in: np.ndarray
    eps_out: np.ndarray
    best_corr: np.ndarray
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def runs(self) -> int:
        """R."""
        return int(self.seeds.shape[0])

    def final(self, name: str) -> tuple[float, float]:
        """(mean, standard error over runs) of a [R, T] metric at the last record."""
        values = np.asarray(getattr(self, name))[:, -1]
        se = float(values.std(ddof=1) / math.sqrt(values.shape[0])) if values.shape[0] > 1 else 0.0
        return float(values.mean()), se


def train_adversarial(config: AdversarialConfig, *, runs: int | None = None,
                      seed: int | Sequence[int] | torch.Tensor = 0, device: str | torch.device = "cpu",
                      dtype: torch.dtype = torch.float32, threads: int | None = 1,
                      progress: Callable[[int, int], None] | None = None,
                      keep_networks: bool = False, oracle: Oracle | None = None,
                      data: tuple[torch.Tensor, torch.Tensor] | None = None) -> AdversarialResult:
    """Train R students on R oracles in the configured regime and record robustness and the plane split.

    Args:
        oracle, data: a given oracle (e.g. :func:`~teachtheory.adversarial.oracles.digits_oracle`) and its
            (X_train [R, N, d], X_eval [R, M, d]) in place of the random low-rank one; ``config``'s
            input_dim, teacher_widths and output_dim must match it (its rank, data_std and sizes are unused).
        config: the experiment. runs: R when ``seed`` is one integer (run r uses seed + r).
        device, dtype: where and in what precision. threads: intra-op threads on CPU (None: torch's).
        progress: ``progress(done_epochs, epochs)`` after every record.
        keep_networks: keep the final student, the oracle and the held-out inputs in ``result.extra``.
    """
    device = torch.device(device)
    seeds = check_training_call(config, AdversarialConfig, runs, seed, device)
    if config.regime == "ccat" and config.eps == 0:
        raise ValueError("regime 'ccat' needs eps > 0")
    if (oracle is None) != (data is None):
        raise ValueError("oracle and data go together: give both or neither")
    if oracle is not None:
        _check_given(config, oracle, data, int(seeds.numel()))
    with intra_op_threads(threads if device.type == "cpu" else None):
        return _train(config, seeds, device, dtype, progress, keep_networks, oracle, data)


def _check_given(config: AdversarialConfig, oracle: Oracle, data, runs: int) -> None:
    weights = oracle.teacher.weights
    widths = tuple(int(W.shape[-1]) for W in weights[:-1])
    if (int(weights[0].shape[1]), widths, int(weights[-1].shape[-1])) != (
            config.input_dim, config.teacher_widths, config.output_dim):
        raise ValueError(f"oracle has input_dim {weights[0].shape[1]}, widths {widths}, {weights[-1].shape[-1]} "
                         f"outputs; config says {config.input_dim}, {config.teacher_widths}, {config.output_dim}")
    if len(data) != 2 or any(X.dim() != 3 or X.shape[0] != runs or X.shape[-1] != config.input_dim for X in data):
        raise ValueError(f"data must be (X_train, X_eval), each [R={runs}, n, {config.input_dim}]")
    if weights[0].shape[0] != runs:
        raise ValueError(f"oracle holds {weights[0].shape[0]} runs, the seeds {runs}")


def _train(config: AdversarialConfig, seeds, device, dtype, progress, keep_networks, given=None,
           data=None) -> AdversarialResult:
    started = time.perf_counter()
    streams = RunStreams(seeds)
    R = streams.runs
    oracle = make_oracle(config, streams, dtype, device) if given is None else given
    teacher = oracle.teacher.layers()
    student_cfg = TeacherStudentConfig(input_dim=config.input_dim, teacher_widths=config.teacher_widths,
                                       output_dim=config.output_dim, multi=config.multi)
    student = make_student_network(student_cfg, streams, dtype, device)
    params = [p.clone().requires_grad_(True) for p in student.parameters()]
    depth = student.depth
    velocity = [torch.zeros_like(p) for p in params]
    if data is None:
        X_train = oracle.sample(streams, "adv-train", config.train_size, config.data_std)
        X_eval = oracle.sample(streams, "adv-eval", config.eval_size, config.data_std)
    else:
        X_train, X_eval = (X.to(dtype=dtype, device=device) for X in data)
    n_train = X_train.shape[1]
    with torch.no_grad():
        t_eval = nets.forward(teacher, X_eval, act="relu")
    train_plane = _plane_for(config.train_plane, oracle.plane)
    K = config.output_dim
    n_batches = max(1, n_train // config.batch_size)

    def layers_of(ps):
        return list(zip(ps[:depth], ps[depth:]))

    rec: dict[str, list] = {k: [] for k in ("clean", "oracle", "data", "eps_in", "eps_out", "best")}
    record_epochs = sorted({0, config.epochs, *range(0, config.epochs + 1, config.record_every)})

    def record() -> None:
        layers = [(w.detach(), b.detach()) for w, b in layers_of(params)]
        acc = robust_accuracy(layers, oracle, X_eval, eps=config.eps, norm=config.norm, steps=config.attack_steps)
        for key in ("clean", "oracle", "data"):
            rec[key].append(acc[key].cpu())
        with torch.no_grad():
            s_act = nets.forward(layers, X_eval, act="relu").post[1]
            rho = activation_correlations(t_eval.post[1].to(torch.float64), s_act.to(torch.float64))
            best, match = rho.max(-1)
            e_in, e_out = plane_decomposition(layers[0][0].to(torch.float64), teacher[0][0].to(torch.float64),
                                              oracle.plane.to(torch.float64), match)
        rec["best"].append(best.cpu())
        rec["eps_in"].append(e_in.mean(-1).cpu())
        rec["eps_out"].append(e_out.mean(-1).cpu())

    offsets = (torch.arange(R, device=device) * n_train)[:, None]
    flat_X = X_train.reshape(R * n_train, -1)
    for epoch in range(config.epochs + 1):
        if epoch in record_epochs:
            record()
            if progress is not None:
                progress(epoch, config.epochs)
        if epoch == config.epochs:
            break
        order = torch.argsort(streams.uniform("adv-order", epoch, (n_train,)), dim=1).to(device)
        for b in range(n_batches):
            idx = order[:, b * config.batch_size:(b + 1) * config.batch_size] + offsets
            x = flat_X[idx]  # [R, B, d]
            if config.augment > 0:
                x = x + config.augment * streams.normal("adv-augment", epoch * n_batches + b,
                                                        tuple(x.shape[1:])).to(x)
            layers = [(w.detach(), bb.detach()) for w, bb in layers_of(params)]
            x, soft = _training_inputs(config, x, layers, teacher, train_plane, streams, epoch * n_batches + b, K)
            with torch.enable_grad():
                out = nets.forward(layers_of(params), x, act="relu").output
                if soft is not None:
                    loss = -(soft * F.log_softmax(out, -1)).sum(-1).mean(1).sum()
                else:
                    with torch.no_grad():
                        y = logits(teacher, x)
                    if config.target == "logit":
                        loss = 0.5 * ((out - y) ** 2).sum(-1).mean(1).sum()
                    else:
                        loss = F.cross_entropy(out.transpose(1, 2), y.argmax(-1), reduction="none").mean(1).sum()
                grads = torch.autograd.grad(loss, params)  # runs never interact: the sum's gradient is per run
            with torch.no_grad():
                for i, (p, g, v) in enumerate(zip(params, grads, velocity)):
                    new, velocity[i] = momentum_step(p, g, v, config.lr, config.momentum)
                    params[i] = new.requires_grad_(True)
        if not all(torch.isfinite(p).all() for p in params):
            raise FloatingPointError(f"training diverged at epoch {epoch}; lower lr (got {config.lr})")

    def stack(key):
        return torch.stack(rec[key], 1).numpy()

    result = AdversarialResult(config=config, seeds=seeds.numpy(), epochs=np.array(record_epochs),
                               clean_acc=stack("clean"), robust_oracle=stack("oracle"), robust_data=stack("data"),
                               eps_in=stack("eps_in"), eps_out=stack("eps_out"), best_corr=stack("best"),
                               seconds=time.perf_counter() - started)
    if keep_networks:
        result.extra.update(student=[(w.detach(), b.detach()) for w, b in layers_of(params)], oracle=oracle,
                            X_eval=X_eval)
    return result


def _training_inputs(config, x, layers, teacher, plane, streams, step, K):
    """The batch the student is trained on: (inputs, soft targets or None)."""
    if config.regime == "st" or config.eps == 0:
        return x, None
    if config.regime == "at":
        return oracle_adversary(layers, teacher, x, config.eps, norm=config.norm, steps=config.train_steps,
                                plane=plane), None
    # CCAT: half clean (one-hot), half adversarial with calibrated soft targets
    with torch.no_grad():
        y = logits(teacher, x).argmax(-1)
    half = x.shape[1] // 2
    x_adv, y_adv = x[:, half:], y[:, half:]
    # each example gets its own budget eps_i ~ U(0, eps): signed PGD steps put nearly every perturbation on
    # the sphere of its budget, so with one budget lambda(delta) would be 0 for all and rho would not matter
    radius = streams.uniform("adv-ccat-radius", step, (x_adv.shape[1], 1)).to(x) * config.eps
    start = (2 * streams.uniform("adv-ccat-start", step, tuple(x_adv.shape[1:])).to(x) - 1) * radius
    if config.norm == "l2":
        start = start / math.sqrt(x.shape[-1])

    def confidence(z):  # the largest softmax probability on a class other than the label
        prob = F.softmax(logits(layers, z), -1)
        return prob.masked_fill(F.one_hot(y_adv, K).bool(), -1.0).amax(-1)

    x_adv = pgd(confidence, x_adv, radius, norm=config.norm, steps=config.train_steps, plane=plane, start=start,
                keep_best=True)
    lam = ccat_lambda(x_adv - x[:, half:], config.eps, config.rho)[..., None]
    soft = torch.cat([F.one_hot(y[:, :half], K).to(x), lam * F.one_hot(y_adv, K).to(x) + (1 - lam) / K], 1)
    return torch.cat([x[:, :half], x_adv], 1), soft
