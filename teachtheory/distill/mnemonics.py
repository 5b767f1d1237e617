r"""Mnemonics: exemplars optimised by a bilevel problem for class-incremental learning (Liu, Su, Liu, Schiele &
Sun, "Mnemonics Training: Multi-Class Incremental Learning without Forgetting", CVPR 2020), against herding.

Class-incremental protocol at small scale: the classes arrive in phases (on digits, 2 classes then 4 phases of
2). In phase p, R networks continue training (the protocol's SGD, :func:`teachtheory.distill.evaluate.train_networks`)
on the real training images of the phase's new classes together with the exemplar memory of the old classes
(``memory`` images per class), and are tested on every class seen so far. After the phase, the new classes'
exemplars are chosen:

* ``herding``: per class, greedy herding of the class mean (:func:`teachtheory.distill.baselines.herding`, in
  pixel space by default, or in the feature space of a trained ConvNet);
* ``mnemonics``: the herding exemplars as the start of the paper's bilevel problem (Sec. 4.1, Eqs. 5-8): a
  temporary model :math:`\theta' = \theta - \eta\nabla_\theta L(\theta; \mathcal E)` fine-tuned on the exemplars
  :math:`\mathcal E` from the phase's trained networks :math:`\theta` must fit the phase's real data, and the
  exemplars descend that validation loss; the hypergradient goes through
  :func:`teachtheory.distill.dd.fit_bilevel` (the unrolling engine :mod:`teachtheory.unroll`), over the R
  trained networks at once, with a learned fine-tuning step size.

The paper's headline metric is the **average incremental accuracy**: the mean over phases of the accuracy on
all classes seen so far. This module implements the exemplar-level bilevel optimisation of new classes only
(the paper also re-adjusts old exemplars by splitting them in two folds, Sec. 4.2; not done here).
"""

from __future__ import annotations

import numpy as np
import torch

from .baselines import herding
from .data import DistillData
from .dd import _positive, fit_bilevel
from .evaluate import test_accuracy, train_networks
from .nets import make_net
from .synthetic import SyntheticSet

__all__ = ["EXEMPLARS", "incremental", "mnemonics", "phase_classes"]

EXEMPLARS = ("herding", "mnemonics")


def phase_classes(num_classes: int, phases) -> list[list[int]]:
    """The classes of each phase, in order: ``phases`` are the class counts per phase (summing to K).

    Raises:
        ValueError: counts that are not positive integers or do not sum to ``num_classes``.
    """
    phases = list(phases)
    if not phases or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in phases):
        raise ValueError(f"phases must be positive integers (classes per phase), got {phases!r}")
    if sum(phases) != num_classes:
        raise ValueError(f"phases must sum to the {num_classes} classes, got {phases!r} (sum {sum(phases)})")
    edges = np.cumsum([0] + phases)
    return [list(range(int(a), int(b))) for a, b in zip(edges[:-1], edges[1:])]


def _restrict(data: DistillData, classes: list[int], relabel: bool) -> DistillData:
    """The training and test images of ``classes``; with ``relabel`` labels become 0..len(classes)-1."""
    keep = torch.tensor(classes, device=data.y_train.device)
    parts = {}
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        mask = torch.isin(y, keep)
        y = y[mask]
        if relabel:
            y = torch.searchsorted(keep, y)
        parts[f"x_{split}"], parts[f"y_{split}"] = x[mask], y
    return DistillData(data.name, num_classes=len(classes) if relabel else data.num_classes, mean=data.mean,
                       std=data.std, meta=dict(data.meta, classes=classes), **parts)


def _herding_exemplars(data: DistillData, classes: list[int], memory: int, seed: int, features: str
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    sub = _restrict(data, classes, relabel=True)
    chosen = herding(sub, memory, seed=seed, features=features)
    labels = torch.tensor(classes, device=chosen.labels.device)[chosen.labels]
    return chosen.images, labels


def incremental(data: DistillData, *, exemplars: str = "mnemonics", memory: int = 5, phases=(2, 2, 2, 2, 2),
                runs: int = 8, seed: int = 0, net: str = "mlp", width: int | None = 64, epochs: int = 30,
                herding_features: str = "pixels", steps: int = 100, inner_steps: int = 1, batch_real: int = 128,
                lr_img: float = 0.01, lr_init: float = 0.01, progress=None) -> dict:
    """Run the class-incremental protocol (see the module docstring) with ``herding`` or ``mnemonics`` exemplars.

    Args:
        memory: exemplars kept per old class; phases: classes per phase (sum K).
        runs: R networks trained at once (paired across exemplar kinds by ``seed``); net, width: the learner.
        epochs: training epochs per phase; herding_features: ``pixels``, ``random`` or ``trained``.
        steps, inner_steps, batch_real, lr_img, lr_init: the mnemonics bilevel fit (outer iterations, fine-tuning
            GD steps, real images per iteration, Adam rate of the exemplars, initial fine-tuning step size).

    Returns:
        ``accuracy`` ``[R, P]`` (seen classes after each phase), ``average`` ``[R]`` (average incremental
        accuracy), ``classes`` per phase, the exemplar memory ``images``/``labels`` after the last phase, and the
        bilevel loss curves.

    Raises:
        ValueError: an unknown ``exemplars`` or bad sizes.
    """
    if exemplars not in EXEMPLARS:
        raise ValueError(f"exemplars must be one of {', '.join(EXEMPLARS)}, got {exemplars!r}")
    for name, value in (("memory", memory), ("runs", runs), ("epochs", epochs), ("steps", steps),
                        ("inner_steps", inner_steps)):
        _positive(name, value)
    groups = phase_classes(data.num_classes, phases)
    device = data.x_train.device
    spec = make_net(net, data.image_shape, data.num_classes, width=width)
    gen = torch.Generator().manual_seed(seed)
    params = spec.init(runs, gen, device)
    mem_x = data.x_train[:0]
    mem_y = data.y_train[:0]
    acc, curves = [], []
    seen: list[int] = []
    for p, classes in enumerate(groups):
        new = _restrict(data, classes, relabel=False)
        x = torch.cat([new.x_train, mem_x])
        y = torch.cat([new.y_train, mem_y])
        params = train_networks(spec, params, x, y, epochs=epochs, generator=gen)
        seen += classes
        test = torch.isin(data.y_test, torch.tensor(seen, device=device))
        acc.append(test_accuracy(spec, params, data.x_test[test], data.y_test[test]).cpu().numpy())
        if p == len(groups) - 1:
            break
        ex_x, ex_y = _herding_exemplars(data, classes, memory, seed, herding_features)
        if exemplars == "mnemonics":
            trained = {k: v.detach() for k, v in params.items()}
            fit = fit_bilevel(new, ex_x, ex_y, spec=spec, steps=steps, sample_theta0=lambda step: trained,
                              epochs=inner_steps, batch_real=batch_real, lr_img=lr_img, lr_init=lr_init,
                              generator=gen)
            ex_x = fit["images"]
            curves.append(fit["loss_curve"])
        mem_x, mem_y = torch.cat([mem_x, ex_x.detach()]), torch.cat([mem_y, ex_y])
        if progress is not None:
            progress(p + 1, len(groups))
    accuracy = np.stack(acc, 1)
    return {"accuracy": accuracy, "average": accuracy.mean(1), "classes": groups, "images": mem_x, "labels": mem_y,
            "loss_curves": curves, "exemplars": exemplars}


def mnemonics(data: DistillData, ipc: int, *, steps: int = 100, seed: int = 0, progress=None,
              phases=None, runs: int = 8, net: str = "mlp", width: int | None = 64, epochs: int = 30,
              herding_features: str = "pixels", inner_steps: int = 1, batch_real: int = 128, lr_img: float = 0.01,
              lr_init: float = 0.01, **_) -> SyntheticSet:
    """The distiller behind ``distill("mnemonics", ...)``: the class-incremental protocol with mnemonics exemplars
    (``ipc`` per class); the set is the exemplar memory after the last phase plus the last phase's own exemplars,
    and the provenance holds the per-phase accuracies and the average incremental accuracy.

    Args:
        phases: classes per phase (default: 2 then pairs, the small-scale split of digits); others: see
            :func:`incremental` (``steps`` are its bilevel iterations per phase).
    """
    K = data.num_classes
    if phases is None:
        phases = (2,) * (K // 2) + ((1,) if K % 2 else ())
    result = incremental(data, exemplars="mnemonics", memory=ipc, phases=phases, runs=runs, seed=seed, net=net,
                         width=width, epochs=epochs, herding_features=herding_features, steps=steps,
                         inner_steps=inner_steps, batch_real=batch_real, lr_img=lr_img, lr_init=lr_init,
                         progress=progress)
    last = result["classes"][-1]
    trained_spec = make_net(net, data.image_shape, K, width=width)
    last_x, last_y = _herding_exemplars(data, last, ipc, seed, herding_features)
    images = torch.cat([result["images"], last_x])
    labels = torch.cat([result["labels"], last_y])
    settings = {"seed": seed, "steps": steps, "phases": list(phases), "classes": result["classes"], "runs": runs,
                "net": trained_spec.to_dict(), "epochs": epochs, "herding_features": herding_features,
                "inner_steps": inner_steps, "batch_real": batch_real, "lr_img": lr_img, "lr_init": lr_init,
                "phase_accuracy_mean": result["accuracy"].mean(0).tolist(),
                "average_incremental_accuracy": float(result["average"].mean()),
                "note": "the last phase's exemplars are herding ones (no later phase optimises them)",
                "loss_curve": [v for c in result["loss_curves"] for v in c]}
    return SyntheticSet(images.detach(), labels, K, "mnemonics", data.name, ipc, provenance=settings)
