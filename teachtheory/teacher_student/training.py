r"""Teacher-student ReLU networks, batched over runs: student specialization experiments.

A fixed ReLU teacher network f* (two or more layers, with biases) labels Gaussian inputs
x ~ N(0, sigma^2 I_d); an over-realised student (``multi`` times as many nodes in every hidden
layer) is trained on the squared error by SGD, both (all) layers at once, on a finite training set
or on fresh samples. On held-out data we record how the student's hidden nodes line up with the
teacher's: the activation correlation matrix rho_jk between teacher node j and student node k,
the best correlation per teacher node, the recovery rate (teacher nodes with a student node above
``threshold``, 0.95 by default), the time to alignment, the students' fan-out norms, and the size
of the gradient (the parameter gradient, and the talk's ||g_1(x)||_inf at the first hidden layer).

Teacher construction (Tian 2020, Sec. 6 and the talk): hidden node j of every teacher layer has a
unit-norm Gaussian weight vector and a bias that puts its ReLU boundary inside the data (node j is
active on a fraction q_j ~ U(0.3, 0.7) of a calibration sample, so every teacher node is
"observed"). The fan-out of hidden node j (j = 1..m, its row of the next layer) is a Gaussian direction
with norm exactly c/j^p (``strength_decay`` = p; c = sqrt(n_out / sum_j j^-2p) keeps the layer's total
squared norm at n_out, as for unit-norm incoming weights): the realised strength ||v_j||/||v_1|| is
1/j^p exactly, so node 1 is the strongest and node m the weakest (:func:`fanout_strengths`). The student
starts from PyTorch's default uniform initialisation times ``student_scale`` (without biases when ``bias=False``: they
stay at zero). Both networks are :mod:`teachtheory.nets` ReLU networks; SGD with momentum is
:func:`teachtheory.learners.updates.momentum_step`.

Input augmentation (the talk's "Lesson 2"), applied to a finite training set D:
``agnostic``: for each x in D and ``augment_count`` random coordinate axes e_k, add x +- delta e_k
(``augment_count >= d`` uses all 2d axes: Tian's |D'| = (2d + 1)|D|); ``aware``: for each x and
``augment_count`` random first-layer teacher nodes j, project x onto node j's boundary
{w_j.x + b_j = 0} and add the projection +- delta w_j/||w_j||. With the same count both add
2 ``augment_count`` |D| points. delta = ``augment_scale`` sigma.

Batched: every tensor has a leading run axis R; runs never interact, and all randomness comes from
:class:`~teachtheory.random.RunStreams`, so run r of a batch equals a single run with the same seed.
The only Python loop is over time.

References:
    Y. Tian, "Student Specialization in Deep Rectified Networks With Finite Width and Input
    Dimension", ICML 2020 (alignment theorems; teacher-strength and L-shape experiments).
    Tian's teacher-student talk: "Student Specialization", "L-shape curve at convergence", "Lesson 1:
    Stronger teacher node learns faster", "Lesson 2: Data augmentation matters".
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from .. import nets
from ..learners.updates import momentum_step
from ..random import RunStreams, as_seeds
from ..threads import intra_op_threads

__all__ = [
    "AUGMENTATIONS",
    "Network",
    "TeacherStudentConfig",
    "TeacherStudentResult",
    "activation_correlations",
    "fanout_strengths",
    "final_correlations",
    "forward",
    "make_dataset",
    "make_student_network",
    "make_teacher_network",
    "train_teacher_student",
    "with_options",
]

AUGMENTATIONS = ("none", "agnostic", "aware")
TEACHER_WEIGHTS = ("gaussian", "discrete")


@dataclass(frozen=True)
class TeacherStudentConfig:
    """Configuration of a teacher-student experiment (hold configuration only).

    Attributes:
        input_dim: d. teacher_widths: hidden widths (m_1, ..., m_L) of the teacher; one entry is a
            two-layer network. output_dim: number of outputs c.
        multi: the student has multi * m_l nodes in hidden layer l.
        strength_decay: p; the fan-out of teacher node j (1-based) is scaled by 1/j^p.
        bias: use biases (teacher and student). data_std: sigma of x ~ N(0, sigma^2 I_d).
        train_size: size of the finite training set per run; None draws fresh samples every step.
        eval_size: held-out samples for the correlation metrics. batch_size, lr, momentum: SGD.
        full_batch: every step uses the whole training set D' (augmentation included) instead of a
            minibatch of ``batch_size`` indices drawn with replacement (gradient descent, not SGD).
        steps: SGD steps. record_every: metrics every this many steps (and at 0 and the end).
        student_scale: multiplies the default initialisation of the student.
        student_init_std: if set, the student's weights start N(0, std^2) and its biases at zero instead
            (Tian's reference runs start small, std 0.005).
        teacher_weights: "gaussian" (unit-norm Gaussian directions) or "discrete" (entries drawn uniformly
            from {-1, 0, +1}, then scaled like the Gaussian ones; a node with all zeros is redrawn as +-1).
        augment, augment_count, augment_scale: input augmentation (see the module docstring).
        threshold: a teacher node is recovered when some student node's correlation exceeds it.
        grad_samples: training samples on which max ||g_1(x)||_inf is measured at each record.
    """

    input_dim: int = 20
    teacher_widths: tuple[int, ...] = (10,)
    output_dim: int = 10
    multi: int = 5
    strength_decay: float = 0.0
    bias: bool = True
    data_std: float = 1.0
    train_size: int | None = 4000
    eval_size: int = 2000
    batch_size: int = 64
    full_batch: bool = False
    lr: float = 0.05
    momentum: float = 0.9
    steps: int = 5000
    record_every: int = 100
    student_scale: float = 1.0
    augment: str = "none"
    augment_count: int = 1
    augment_scale: float = 0.1
    threshold: float = 0.95
    grad_samples: int = 256
    student_init_std: float | None = None
    teacher_weights: str = "gaussian"

    def __post_init__(self) -> None:
        def positive_int(name, value, minimum=1):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")

        positive_int("input_dim", self.input_dim)
        positive_int("output_dim", self.output_dim)
        positive_int("multi", self.multi)
        positive_int("eval_size", self.eval_size, 2)
        positive_int("batch_size", self.batch_size)
        positive_int("steps", self.steps, 0)
        positive_int("record_every", self.record_every)
        positive_int("augment_count", self.augment_count)
        positive_int("grad_samples", self.grad_samples)
        widths = tuple(self.teacher_widths)
        if len(widths) == 0 or any(not isinstance(m, (int, np.integer)) or m < 1 for m in widths):
            raise ValueError("teacher_widths must be a non-empty tuple of positive integers, "
                             f"got {self.teacher_widths!r}")
        object.__setattr__(self, "teacher_widths", tuple(int(m) for m in widths))
        if self.train_size is not None:
            positive_int("train_size", self.train_size)
        for name in ("lr", "data_std", "student_scale", "augment_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not (isinstance(self.strength_decay, (int, float)) and math.isfinite(self.strength_decay)
                and self.strength_decay >= 0):
            raise ValueError(f"strength_decay must be a non-negative number, got {self.strength_decay!r}")
        if not (0 < self.threshold < 1):
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold!r}")
        if self.student_init_std is not None and not (
                isinstance(self.student_init_std, (int, float)) and math.isfinite(self.student_init_std)
                and self.student_init_std > 0):
            raise ValueError(f"student_init_std must be a positive finite number or None, "
                             f"got {self.student_init_std!r}")
        if self.teacher_weights not in TEACHER_WEIGHTS:
            raise ValueError(f"teacher_weights must be one of {', '.join(TEACHER_WEIGHTS)}, got "
                             f"{self.teacher_weights!r}")
        if self.augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {self.augment!r}")
        if not isinstance(self.full_batch, bool):
            raise ValueError(f"full_batch must be True or False, got {self.full_batch!r}")
        if self.full_batch and self.train_size is None:
            raise ValueError("full_batch needs a finite training set: set train_size")
        if self.augment != "none" and self.train_size is None:
            raise ValueError("augment needs a finite training set: set train_size (augmentation applies to D)")

    @property
    def student_widths(self) -> tuple[int, ...]:
        """Hidden widths of the student: ``multi`` times the teacher's."""
        return tuple(self.multi * m for m in self.teacher_widths)

    def to_dict(self) -> dict:
        """The configuration as a plain dict."""
        return asdict(self)


@dataclass
class Network:
    """Weights of R networks: ``weights[l]`` [R, in, out], ``biases[l]`` [R, out]; the last is the output layer."""

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]

    @property
    def depth(self) -> int:
        """Number of layers (hidden layers + the output layer)."""
        return len(self.weights)

    def parameters(self) -> list[torch.Tensor]:
        """[*weights, *biases]."""
        return [*self.weights, *self.biases]

    def layers(self) -> list[nets.Layer]:
        """[(W_l, b_l)] as :mod:`teachtheory.nets` takes them."""
        return list(zip(self.weights, self.biases))

    def detach(self) -> Network:
        """A detached copy."""
        return Network([w.detach().clone() for w in self.weights], [b.detach().clone() for b in self.biases])

    def subset(self, index) -> Network:
        """The networks of some runs."""
        return Network([w[index] for w in self.weights], [b[index] for b in self.biases])


def forward(net: Network, X: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    """(pre-activations, activations) of every hidden layer and the output, for X [R, n, d]."""
    fwd = nets.forward(net.layers(), X, act="relu")
    return fwd.pre[:-1], fwd.hidden, fwd.output


def _gaussian_inputs(streams: RunStreams, tag: str, step: int, n: int, config: TeacherStudentConfig, dtype, device):
    return streams.normal(tag, step, (n, config.input_dim), dtype=dtype).to(device) * config.data_std


def _teacher_draw(streams: RunStreams, config: TeacherStudentConfig, tag: str, step: int, shape) -> torch.Tensor:
    """Raw teacher weights [R, *shape]: Gaussian, or uniform on {-1, 0, +1} with all-zero columns set to the
    sign of a Gaussian (so every node has a direction)."""
    g = streams.normal(tag, step, shape)
    if config.teacher_weights == "gaussian":
        return g
    u = streams.uniform(tag + "-discrete", step, shape)
    W = torch.floor(3.0 * u).clamp(max=2.0) - 1.0
    empty = (W == 0).all(dim=1, keepdim=True)
    return torch.where(empty, torch.sign(g), W)


def _exact_fanout(W: torch.Tensor, p: float) -> torch.Tensor:
    """Rows of W [R, n_in, n_out] rescaled to norm c/j^p exactly (j = 1..n_in), c = sqrt(n_out / sum_j j^-2p)."""
    n_in, n_out = W.shape[1], W.shape[2]
    strength = torch.arange(1, n_in + 1, dtype=W.dtype) ** (-p)
    c = math.sqrt(n_out / float((strength**2).sum()))
    return W / W.norm(dim=2, keepdim=True) * (c * strength)[None, :, None]


def fanout_strengths(net: Network, layer: int = -1) -> torch.Tensor:
    """Realised fan-out strength of every node of hidden layer ``layer`` (default the last), relative to node 1:
    ||row j of the next layer's weights|| / ||row 1||, [R, m] (1/j^p for a teacher built with decay p)."""
    weights = net.weights
    hidden = len(weights) - 1
    index = layer % hidden if -hidden <= layer < hidden else None
    if index is None:
        raise ValueError(f"layer must index a hidden layer (-{hidden}..{hidden - 1}), got {layer!r}")
    rows = weights[index + 1].norm(dim=-1)
    return rows / rows[:, :1]


def make_teacher_network(config: TeacherStudentConfig, streams: RunStreams, dtype=torch.float32,
                         device="cpu") -> Network:
    """The teacher networks of R runs (see the module docstring for the construction)."""
    sizes = [config.input_dim, *config.teacher_widths]
    weights, biases = [], []
    calib = _gaussian_inputs(streams, "teacher-calibration", 0, 4096, config, torch.float64, "cpu")
    h = calib
    p = float(config.strength_decay)
    for l, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        W = _teacher_draw(streams, config, "teacher-weight", l, (n_in, n_out))
        W = _exact_fanout(W, p) if l > 0 else W / W.norm(dim=1, keepdim=True)
        z = torch.bmm(h, W)
        if config.bias:
            q = 0.3 + 0.4 * streams.uniform("teacher-quantile", l, (n_out,))  # active fraction of node j
            zs = z.sort(dim=1).values
            idx = ((1 - q) * (zs.shape[1] - 1)).round().long()
            b = -torch.gather(zs, 1, idx[:, None, :])[:, 0, :]
        else:
            b = torch.zeros(streams.runs, n_out, dtype=torch.float64)
        h = torch.relu(z + b[:, None, :])
        weights.append(W)
        biases.append(b)
    m = sizes[-1]
    V = _teacher_draw(streams, config, "teacher-output", 0, (m, config.output_dim))
    weights.append(_exact_fanout(V, p))
    biases.append(torch.zeros(streams.runs, config.output_dim, dtype=torch.float64))
    return Network([w.to(dtype=dtype, device=device) for w in weights],
                   [b.to(dtype=dtype, device=device) for b in biases])


def make_student_network(config: TeacherStudentConfig, streams: RunStreams, dtype=torch.float32,
                         device="cpu") -> Network:
    """Student networks: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) times ``student_scale`` (PyTorch's default);
    zero biases when ``config.bias`` is False; with ``student_init_std`` N(0, std^2) weights and zero biases."""
    arch = nets.Architecture((config.input_dim, *config.student_widths, config.output_dim), act="relu",
                             bias=config.bias)
    params = arch.init(streams, scheme="uniform", gain=config.student_scale, dtype=dtype, device=device,
                       names=lambda kind, layer: ("student-weight" if kind == "W" else "student-bias", layer))
    layers = arch.layers(params)
    if config.student_init_std is not None:  # small Gaussian start, zero biases
        layers = [(streams.normal("student-weight-small", i, tuple(W.shape[1:]), dtype=dtype).to(device)
                   * config.student_init_std, None if b is None else torch.zeros_like(b))
                  for i, (W, b) in enumerate(layers)]
    return Network([W for W, _ in layers], [torch.zeros(streams.runs, W.shape[-1], dtype=dtype, device=device)
                                            if b is None else b for W, b in layers])


def make_dataset(config: TeacherStudentConfig, teacher: Network, streams: RunStreams, dtype=torch.float32,
                 device="cpu") -> torch.Tensor:
    """The training inputs [R, N', d]: N = train_size Gaussian samples, plus the augmentation points."""
    if config.train_size is None:
        raise ValueError("train_size is None: the experiment draws fresh samples every step")
    X = _gaussian_inputs(streams, "train", 0, config.train_size, config, dtype, device)
    if config.augment == "none":
        return X
    R, N, d = X.shape
    delta = config.augment_scale * config.data_std
    if config.augment == "agnostic":
        if config.augment_count >= d:
            directions = torch.eye(d, dtype=dtype, device=device).expand(R, N, d, d)
        else:
            axes = streams.integers("augment-axis", 0, d, (N, config.augment_count)).to(device)
            directions = torch.nn.functional.one_hot(axes, d).to(dtype)
        base = X[:, :, None, :].expand_as(directions)
    else:
        W1, b1 = teacher.weights[0], teacher.biases[0]  # [R, d, m], [R, m]
        m = W1.shape[-1]
        nodes = streams.integers("augment-node", 0, m, (N, config.augment_count)).to(device)  # [R, N, c]
        w = torch.gather(W1.transpose(1, 2)[:, None].expand(R, N, m, d), 2,
                         nodes[..., None].expand(R, N, nodes.shape[-1], d))
        b = torch.gather(b1[:, None, :].expand(R, N, m), 2, nodes)
        norm2 = (w * w).sum(-1)
        signed = ((X[:, :, None, :] * w).sum(-1) + b) / norm2  # (w.x + b)/||w||^2
        base = X[:, :, None, :] - signed[..., None] * w
        directions = w / norm2.sqrt()[..., None]
    extra = torch.cat([base + delta * directions, base - delta * directions], 2).reshape(R, -1, d)
    return torch.cat([X, extra], 1)


def activation_correlations(teacher_act: torch.Tensor, student_act: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    r"""Pearson correlation rho_jk over samples between teacher node j and student node k.

    Args:
        teacher_act [R, n, m], student_act [R, n, k] (post-ReLU activations on the same inputs).

    Returns:
        [R, m, k]; a node that never changes on the data (dead, or always linear with zero variance)
        gets correlation 0.
    """
    a = teacher_act - teacher_act.mean(1, keepdim=True)
    b = student_act - student_act.mean(1, keepdim=True)
    na, nb = a.norm(dim=1), b.norm(dim=1)
    rho = torch.bmm(a.transpose(1, 2), b) / (na[:, :, None] * nb[:, None, :]).clamp_min(eps)
    valid = (na[:, :, None] > eps) & (nb[:, None, :] > eps)
    return torch.where(valid, rho, torch.zeros_like(rho))


@dataclass
class TeacherStudentResult:
    """What :func:`train_teacher_student` measured (numpy arrays, leading run axis R).

    Attributes:
        config, seeds.
        steps [T]: the recorded steps. eval_loss [R, T]: held-out 1/2 E||f - f*||^2.
        grad_norm [R, T]: norm of the full parameter gradient on a training batch at each record.
        g1_inf [R, T]: max over ``grad_samples`` training inputs of ||g_1(x)||_inf (first hidden layer).
        best_corr [layer] [R, T, m_l]: best correlation per teacher node over time.
        corr [layer] [R, m_l, n_l]: final correlation matrix.
        student_best [layer] [R, n_l]: final best correlation of each student node (over teacher nodes).
        fanout [layer] [R, n_l]: final fan-out norms of the student nodes (their rows of the next layer).
        fanout_history [R, T, n_L]: fan-out norms of the top hidden layer over time.
        student_best_history [R, T, n_L]: best correlation of each top-layer student node over time.
        student_active_history [R, T, n_L]: fraction of held-out inputs on which each top-layer
            student node is active, over time (0: dead, 1: always on, i.e. linear on the data).
        teacher_fanout [layer] [R, m_l]: fan-out norms of the teacher nodes.
        teacher_active [layer] [R, m_l]: fraction of held-out inputs on which each teacher node is active.
        time_to_alignment [layer] [R, m_l]: first recorded step with best correlation >= threshold (inf: never).
        recovered [layer] [R, m_l]: final best correlation >= threshold.
        seconds: wall time.
    """

    config: TeacherStudentConfig
    seeds: np.ndarray
    steps: np.ndarray
    eval_loss: np.ndarray
    grad_norm: np.ndarray
    g1_inf: np.ndarray
    best_corr: list[np.ndarray]
    corr: list[np.ndarray]
    student_best: list[np.ndarray]
    fanout: list[np.ndarray]
    fanout_history: np.ndarray
    student_best_history: np.ndarray
    student_active_history: np.ndarray
    teacher_fanout: list[np.ndarray]
    teacher_active: list[np.ndarray]
    time_to_alignment: list[np.ndarray]
    recovered: list[np.ndarray]
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def runs(self) -> int:
        """Number R of runs."""
        return int(self.seeds.shape[0])

    def recovery_rate(self, layer: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """(mean over runs, standard error) of recovery per teacher node j of ``layer``."""
        rec = self.recovered[layer].astype(float)
        se = rec.std(0, ddof=1) / math.sqrt(rec.shape[0]) if rec.shape[0] > 1 else np.zeros(rec.shape[1])
        return rec.mean(0), se

    def summary(self) -> dict:
        """JSON-ready summary: final loss, gradient, recovery per layer and per teacher node."""
        out = {"runs": self.runs, "steps": int(self.steps[-1]), "seconds": self.seconds,
               "final_eval_loss": {"mean": float(self.eval_loss[:, -1].mean()),
                                   "se": (float(self.eval_loss[:, -1].std(ddof=1) / math.sqrt(self.runs))
                                          if self.runs > 1 else 0.0)},
               "final_g1_inf": {"mean": float(self.g1_inf[:, -1].mean()), "max": float(self.g1_inf[:, -1].max())},
               "layers": []}
        for l in range(len(self.recovered)):
            rate, se = self.recovery_rate(l)
            tta = self.time_to_alignment[l]
            out["layers"].append({
                "recovery_rate": float(self.recovered[l].mean()),
                "recovery_by_node": rate, "recovery_se_by_node": se,
                "final_best_corr_by_node": self.best_corr[l][:, -1].mean(0),
                "median_time_to_alignment_by_node": np.array([np.median(tta[:, j]) for j in range(tta.shape[1])]),
            })
        return out


def _hidden_grad_inf(net: Network, teacher: Network, X: torch.Tensor) -> torch.Tensor:
    """max over samples of ||g_1(x)||_inf: the per-sample gradient of 1/2||f - f*||^2 w.r.t. the first
    hidden layer's pre-activations (gating included), per run [R]."""
    with torch.no_grad():
        layers = [(w.detach(), b.detach()) for w, b in net.layers()]
        fwd = nets.forward(layers, X, act="relu")
        target = forward(teacher, X)[2]
        g = nets.backward(layers, fwd, fwd.output - target, act="relu")[0]  # d(1/2||f - f*||^2)/d g_1
    return g.abs().amax(dim=(1, 2))


def train_teacher_student(
    config: TeacherStudentConfig,
    *,
    threads: int | None = 1,
    runs: int | None = None,
    seed: int | Sequence[int] | torch.Tensor = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: Callable[[int, int], None] | None = None,
    keep_networks: bool = False,
) -> TeacherStudentResult:
    """Train R students against R teachers by SGD (with momentum) on 1/2 ||f(x) - f*(x)||^2.

    Args:
        config: the experiment.
        runs: R when ``seed`` is one integer (run r uses seed + r); otherwise len(seed).
        seed: one integer or one seed per run.
        device, dtype: where and in what precision to simulate (float32 by default).
        progress: ``progress(done, total)`` after every recorded step.
        keep_networks: put the final teacher and student in ``result.extra``.

        threads: intra-op threads for the CPU loop (see :func:`intra_op_threads`); None: torch's setting.

    Returns:
        :class:`TeacherStudentResult`.
    """
    device = torch.device(device)
    with intra_op_threads(threads if device.type == "cpu" else None):
        return _train(config, runs=runs, seed=seed, device=device, dtype=dtype, progress=progress,
                      keep_networks=keep_networks)


def check_training_call(config, config_type: type, runs: int | None, seed, device: torch.device) -> torch.Tensor:
    """The argument checks a teacher-student trainer runs first (this module's and the adversarial one's).

    Returns:
        the per-run seeds [R]: ``seed + r`` for one integer ``seed`` (``runs`` required), else ``seed`` itself.

    Raises:
        TypeError: ``config`` is not a ``config_type``. ValueError: ``runs`` not a positive integer or missing,
            or a CUDA ``device`` on a machine without one.
    """
    if not isinstance(config, config_type):
        article = "an" if config_type.__name__[0] in "AEIOU" else "a"
        raise TypeError(f"config must be {article} {config_type.__name__}, got {type(config).__name__}")
    if runs is not None and (isinstance(runs, bool) or not isinstance(runs, int) or runs < 1):
        raise ValueError(f"runs must be a positive integer, got {runs!r}")
    if isinstance(seed, int) and runs is None:
        raise ValueError("runs is required when seed is a single integer")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available")
    return as_seeds(seed, runs) if isinstance(seed, int) else as_seeds(seed)


def _train(config, *, runs, seed, device, dtype, progress, keep_networks) -> TeacherStudentResult:
    seeds = check_training_call(config, TeacherStudentConfig, runs, seed, device)
    streams = RunStreams(seeds)
    started = time.perf_counter()
    teacher = make_teacher_network(config, streams, dtype, device)
    student = make_student_network(config, streams, dtype, device)
    # without biases only the weights are trained (the zero biases stay out of the optimisation)
    params = [p.clone().requires_grad_(True) for p in (student.parameters() if config.bias else student.weights)]
    fixed_biases = None if config.bias else student.biases
    L = len(config.teacher_widths)

    def as_net(ps):
        return Network(list(ps[: L + 1]), list(ps[L + 1:]) if fixed_biases is None else fixed_biases)

    X_eval = _gaussian_inputs(streams, "eval", 0, config.eval_size, config, dtype, device)
    t_pre, t_act, y_eval = forward(teacher, X_eval)
    teacher_active = [(z > 0).to(torch.float64).mean(1).cpu().numpy() for z in t_pre]
    if config.train_size is not None:
        X_train = make_dataset(config, teacher, streams, dtype, device)
        y_train = forward(teacher, X_train)[2]
        n_train = X_train.shape[1]
        g_idx = streams.integers("grad-sample", 0, n_train, (min(config.grad_samples, n_train),)).to(device)
        X_grad = torch.gather(X_train, 1, g_idx[..., None].expand(-1, -1, config.input_dim))
    else:
        X_grad = _gaussian_inputs(streams, "grad-sample", 0, config.grad_samples, config, dtype, device)
    velocity = [torch.zeros_like(p) for p in params]
    record_steps = sorted({0, config.steps, *range(0, config.steps + 1, config.record_every)})
    record_set = set(record_steps)
    rec: dict[str, list] = {k: [] for k in ("eval_loss", "grad_norm", "g1_inf", "fanout", "student_best", "active")}
    best = [[] for _ in range(L)]

    chunk = 128  # minibatch indices (or fresh inputs) are drawn for 128 steps at a time: step t uses row t % 128
    cache: dict[int, torch.Tensor] = {}
    offsets = (None if config.train_size is None
               else (torch.arange(streams.runs, device=device) * X_train.shape[1])[:, None])

    def draws(step: int) -> torch.Tensor:
        block = step // chunk
        if block not in cache:
            cache.clear()
            if config.train_size is None:
                cache[block] = _gaussian_inputs(streams, "batch-x", block, chunk * config.batch_size, config, dtype,
                                                device).reshape(streams.runs, chunk, config.batch_size, -1)
            else:
                cache[block] = (streams.integers("batch", block, X_train.shape[1], (chunk, config.batch_size))
                                .to(device) + offsets[:, :, None])
        return cache[block][:, step % chunk]

    def batch(step: int):
        if config.full_batch:
            return X_train, y_train
        if config.train_size is None:
            xb = draws(step)
            return xb, forward(teacher, xb)[2]
        rows = draws(step).reshape(-1)
        xb = X_train.reshape(-1, config.input_dim).index_select(0, rows).reshape(streams.runs, -1, config.input_dim)
        yb = y_train.reshape(-1, config.output_dim).index_select(0, rows).reshape(streams.runs, -1, config.output_dim)
        return xb, yb

    def loss_and_grad(step: int):
        xb, yb = batch(step)
        out = forward(as_net(params), xb)[2]
        per_run = 0.5 * ((out - yb) ** 2).sum(-1).mean(-1)  # [R]
        grads = torch.autograd.grad(per_run.sum(), params)
        return grads

    def record(step: int, grads) -> None:
        g = grads if grads is not None else loss_and_grad(step)
        with torch.no_grad():
            net = as_net([p.detach() for p in params])
            s_pre, s_act, y_s = forward(net, X_eval)
            rec["eval_loss"].append((0.5 * ((y_s - y_eval) ** 2).sum(-1).mean(-1)).to(torch.float64).cpu())
            for l in range(L):
                rho = activation_correlations(t_act[l].to(torch.float64), s_act[l].to(torch.float64))
                best[l].append(rho.amax(-1).cpu())
                if l == L - 1:
                    rec["student_best"].append(rho.amax(1).cpu())
                    rec["active"].append((s_pre[l] > 0).to(torch.float64).mean(1).cpu())
            rec["fanout"].append(net.weights[L].to(torch.float64).norm(dim=-1).cpu())
            rec["grad_norm"].append(torch.sqrt(sum((gg.to(torch.float64) ** 2).sum(dim=tuple(range(1, gg.ndim)))
                                                   for gg in g)).cpu())
        rec["g1_inf"].append(_hidden_grad_inf(net, teacher, X_grad).to(torch.float64).cpu())

    total = config.steps
    for step in range(config.steps + 1):
        if step == config.steps:
            record(step, None)
            break
        grads = loss_and_grad(step)
        if step in record_set:
            record(step, grads)
            if progress is not None:
                progress(step, total)
        with torch.no_grad():
            for i, (p, g, v) in enumerate(zip(params, grads, velocity)):
                new, velocity[i] = momentum_step(p, g, v, config.lr, config.momentum)
                params[i] = new.requires_grad_(True)
        if (step + 1) % 100 == 0 and not all(torch.isfinite(p).all() for p in params):
            raise FloatingPointError(f"training diverged at step {step}; lower lr (got {config.lr})")
    if not all(torch.isfinite(p).all() for p in params):
        raise FloatingPointError(f"training diverged (non-finite weights); lower lr (got {config.lr})")
    if progress is not None:
        progress(total, total)

    with torch.no_grad():
        net = as_net([p.detach() for p in params])
        _s_pre, s_act, _ = forward(net, X_eval)
        corr, student_best, fanout, teacher_fanout = [], [], [], []
        for l in range(L):
            rho = activation_correlations(t_act[l].to(torch.float64), s_act[l].to(torch.float64)).cpu()
            corr.append(rho.numpy())
            student_best.append(rho.amax(1).numpy())
            fanout.append(net.weights[l + 1].to(torch.float64).norm(dim=-1).cpu().numpy())
            teacher_fanout.append(teacher.weights[l + 1].to(torch.float64).norm(dim=-1).cpu().numpy())
    steps_arr = np.array(record_steps)
    best_np = [torch.stack(b, 1).numpy() for b in best]
    tta, recovered = [], []
    for b in best_np:
        hit = b >= config.threshold
        first = np.where(hit.any(1), steps_arr[np.argmax(hit, axis=1)].astype(float), np.inf)
        tta.append(first)
        recovered.append(b[:, -1] >= config.threshold)
    result = TeacherStudentResult(
        config=config, seeds=seeds.numpy(), steps=steps_arr,
        eval_loss=torch.stack(rec["eval_loss"], 1).numpy(), grad_norm=torch.stack(rec["grad_norm"], 1).numpy(),
        g1_inf=torch.stack(rec["g1_inf"], 1).numpy(), best_corr=best_np, corr=corr, student_best=student_best,
        fanout=fanout, fanout_history=torch.stack(rec["fanout"], 1).numpy(),
        student_best_history=torch.stack(rec["student_best"], 1).numpy(),
        student_active_history=torch.stack(rec["active"], 1).numpy(), teacher_fanout=teacher_fanout,
        teacher_active=teacher_active, time_to_alignment=tta, recovered=recovered,
        seconds=time.perf_counter() - started,
    )
    if keep_networks:
        result.extra["teacher"] = teacher
        result.extra["student"] = net
        result.extra["X_eval"] = X_eval
    return result


def final_correlations(result: TeacherStudentResult, teacher_runs: Sequence[int] | None = None) -> list[np.ndarray]:
    """Final correlation matrices [R, m_l, n_l] per layer, pairing student r with teacher ``teacher_runs[r]``.

    With the default pairing (r with r) this equals ``result.corr``. Pairing students with other runs'
    teachers is the null model used by the power checks: an unrelated teacher is not recovered.
    Needs ``keep_networks=True``.
    """
    if "teacher" not in result.extra:
        raise ValueError("result has no networks: train with keep_networks=True")
    order = list(range(result.runs)) if teacher_runs is None else [int(i) for i in teacher_runs]
    if len(order) != result.runs or not all(0 <= i < result.runs for i in order):
        raise ValueError(f"teacher_runs must list {result.runs} run indices in [0, {result.runs}), "
                         f"got {teacher_runs!r}")
    teacher = result.extra["teacher"].subset(order)
    X = result.extra["X_eval"]
    with torch.no_grad():
        t_act = forward(teacher, X)[1]
        s_act = forward(result.extra["student"], X)[1]
        return [activation_correlations(t.to(torch.float64), s.to(torch.float64)).cpu().numpy()
                for t, s in zip(t_act, s_act)]


def with_options(config: TeacherStudentConfig, **changes) -> TeacherStudentConfig:
    """A copy of ``config`` with some fields changed (validated)."""
    return replace(config, **changes)
