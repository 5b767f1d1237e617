"""One entry point for every distiller: ``distill(method, dataset, ipc, *, steps, seed, device, **options)``."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from . import baselines, dc, dd, dm, gtn, kip, ld, mnemonics, mtt, sldd, tdd
from .data import DistillData, load_dataset
from .synthetic import SyntheticSet

__all__ = ["BASELINES", "LEARNED", "METHODS", "Method", "distill", "load_any"]


@dataclass(frozen=True)
class Method:
    """A distiller: its function, default steps and source.

    The function is ``(data, ipc, *, steps, seed, progress, **options) -> SyntheticSet``.
    """

    name: str
    run: Callable[..., SyntheticSet]
    steps: int | None
    source: str
    description: str


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("random", baselines.random_real, None, "", "random real images per class"),
    Method("herding", baselines.herding, None, "Welling, ICML 2009", "herding in ConvNet feature space"),
    Method("kmeans", baselines.kmeans, None, "", "k-means centroids per class (scikit-learn)"),
    Method("full", baselines.full_set, None, "", "the whole training set"),
    Method("dm", dm.dm, 1000, "Zhao & Bilen, WACV 2023", "distribution matching"),
    Method("kip", kip.kip, 500, "Nguyen, Chen & Lee, ICLR 2021", "kernel inducing points (NTK/NNGP KRR)"),
    Method("label-solve", kip.label_solve_method, None, "Nguyen, Chen & Lee, ICLR 2021",
           "closed-form KRR labels for random real images"),
    Method("dc", dc.dc, 200, "Zhao, Mopuri & Bilen, ICLR 2021", "gradient matching"),
    Method("dsa", dc.dsa, 200, "Zhao & Bilen, ICML 2021", "gradient matching with siamese augmentation"),
    Method("mtt", mtt.mtt, 300, "Cazenavette et al., CVPR 2022", "matching training trajectories"),
    Method("dd", dd.dd, 300, "Wang et al., arXiv 2018",
           "dataset distillation through unrolled GD (learned step sizes)"),
    Method("sldd", sldd.sldd, 300, "Sucholutsky & Schonlau, IJCNN 2021", "soft-label dataset distillation"),
    Method("tdd", tdd.tdd, 300, "Sucholutsky & Schonlau, IJCNN 2021",
           "text dataset distillation (SLDD on embeddings)"),
    Method("ld", ld.ld, 300, "Bohdal, Yang & Hospedales, NeurIPS 2020 workshop",
           "label distillation of real base images (ridge pseudo-gradient or unrolled)"),
    Method("gtn", gtn.gtn, 300, "Such et al., ICML 2020",
           "generative teaching network: generator + learned curriculum, weight-normalised meta-gradients"),
    Method("mnemonics", mnemonics.mnemonics, 100, "Liu et al., CVPR 2020",
           "bilevel-optimised exemplars over class-incremental phases"),
)}
BASELINES = ("random", "herding", "kmeans", "full")
LEARNED = ("dm", "kip", "label-solve", "dc", "dsa", "mtt", "dd", "sldd", "tdd", "ld", "gtn", "mnemonics")


def _rich_progress(label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A rich progress bar on stderr: (update(done, total), close())."""
    from rich.console import Console

    from ..cli import progress_bar

    bar = progress_bar(Console(stderr=True))
    bar.start()
    task = bar.add_task(label, total=None)
    return (lambda done, total: bar.update(task, completed=done, total=total)), bar.stop


def distill(method: str, dataset: str | DistillData, ipc: int, *, steps: int | None = None, seed: int = 0,
            device: str | torch.device = "cpu", progress: bool | Callable[[int, int], None] = False,
            data_root: str | None = None, **options) -> SyntheticSet:
    """Distil ``ipc`` images per class of ``dataset`` with ``method``; returns the :class:`SyntheticSet`.

    Args:
        method: one of :data:`METHODS` (``random``, ``herding``, ``kmeans``, ``full``, ``dm``, ``kip``,
            ``label-solve``, ``dc``, ``dsa``, ``mtt``, ``dd``, ``sldd``, ``tdd``, ``ld``, ``gtn``, ``mnemonics``).
        dataset: a name of :data:`teachtheory.distill.data.DATASETS`, a text set name (``text-synthetic`` or
            ``text:FOLDER``, see :mod:`teachtheory.distill.tdd`) or a loaded :class:`DistillData`.
        ipc: images per class.
        steps: distillation steps (the method's default when None; ignored by the baselines).
        seed: seeds every random draw of the method (same seed, same set on one device).
        device: where the work runs (``cpu``, ``cuda``, ``cuda:N``).
        progress: True for a progress bar over the steps on stderr, or a callable ``(done, total)``.
        data_root: folder with the files of MNIST / Fashion-MNIST / CIFAR.
        **options: the method's own settings (see its function), e.g. ``width``, ``lr_img``, ``kernel``.

    Raises:
        ValueError: unknown method or data set, a bad ``ipc``/``steps``/``seed``, an unknown option, or a
            device that is not available.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    for name, value, low in (("ipc", ipc, 1), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available; use cpu")
    spec = METHODS[method]
    check_options(method, options)
    data = dataset if isinstance(dataset, DistillData) else load_any(dataset, root=data_root)
    data = data.to(device)
    close = None
    if progress is True:
        progress, close = _rich_progress(f"distill {method} {data.name} ipc={ipc}")
    elif progress is False:
        progress = None
    kwargs = dict(options, seed=int(seed), progress=progress)
    if spec.steps is not None:
        kwargs["steps"] = int(steps or spec.steps)
    started = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[]):  # methods draw from their own generators; keep the global state
            syn = spec.run(data, int(ipc), **kwargs)
    finally:
        if close is not None:
            close()
    syn.provenance = dict(syn.provenance, method=method, dataset=data.name, dataset_meta=data.meta, ipc=int(ipc),
                          normalisation={"mean": data.mean.tolist(), "std": data.std.tolist()},
                          options={k: v for k, v in options.items() if _plain(v)}, device=str(device),
                          seconds=time.perf_counter() - started, torch=torch.__version__,
                          python=platform.python_version(), steps=kwargs.get("steps"))
    return syn


def load_any(name: str, *, root: str | None = None, device: str | torch.device = "cpu") -> DistillData:
    """An image set of :data:`~teachtheory.distill.data.DATASETS` or a text set (``text-synthetic``, ``text:FOLDER``).

    Raises:
        ValueError: an unknown name (see :func:`~teachtheory.distill.data.load_dataset`).
    """
    if tdd.is_text_dataset(name):
        return tdd.resolve_dataset(name).to(device)
    return load_dataset(name, root=root, device=device)


def _plain(value) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), list, tuple))


def check_options(method: str, options: dict) -> None:
    """Refuse options the method's function does not take (a typo must not pass silently).

    Raises:
        ValueError: naming the unknown options and the accepted ones.
    """
    import inspect

    spec = METHODS[method]
    accepted = {p.name for p in inspect.signature(spec.run).parameters.values()
                if p.kind == p.KEYWORD_ONLY} - {"progress", "seed", "steps"}
    if spec.run in (dc.dsa,):
        accepted = {p.name for p in inspect.signature(dc.dc).parameters.values()
                    if p.kind == p.KEYWORD_ONLY} - {"progress", "seed", "steps", "augment", "method"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ValueError(f"method {spec.name!r} does not take option(s) {', '.join(unknown)}; "
                         f"it accepts: {', '.join(sorted(accepted)) or 'none'}")
