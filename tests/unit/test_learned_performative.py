"""Performative teaching (DHT Sec. 4.2) and privacy-preserving teaching (DHT Sec. 5.3)."""

import math

import pytest
import torch

from teachtheory import problems
from teachtheory.distill.nets import NetSpec
from teachtheory.engine import teach
from teachtheory.learners import Softmax
from teachtheory.teachers.performative import (
    _scores,
    cap_project,
    digits_images,
    greedy_features,
    random_on_cap,
    train_performative,
)
from teachtheory.teachers.privacy import PrivateDHTTeacher, private_distance, train_perceptual


def _angle(a, b):
    return torch.acos(((a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))).clamp(-1, 1))


def test_cap_projection_and_random_points_stay_on_the_cap():
    gen = torch.Generator().manual_seed(0)
    center = torch.randn(3, 5, 7, generator=gen, dtype=torch.float64)
    far = torch.randn(3, 5, 7, generator=gen, dtype=torch.float64) * 4
    eps = 0.2
    projected = cap_project(far, center, eps)
    assert torch.allclose(projected.norm(dim=-1), center.norm(dim=-1))
    assert (_angle(projected, center) <= eps + 1e-9).all()
    inside = cap_project(center + 1e-3 * far, center, eps)  # already inside: only rescaled
    assert torch.allclose(_angle(inside, center), _angle(center + 1e-3 * far, center))
    rand = random_on_cap(center, eps, torch.randn(3, 5, 7, generator=gen, dtype=torch.float64),
                         torch.rand(3, 5, generator=gen, dtype=torch.float64))
    assert torch.allclose(rand.norm(dim=-1), center.norm(dim=-1))
    assert (_angle(rand, center) <= eps + 1e-9).all() and (_angle(rand, center) > 0).all()


def test_greedy_features_never_score_worse_and_stay_on_the_cap():
    gen = torch.Generator().manual_seed(1)
    R, m, h, K = 2, 6, 8, 3
    f = torch.randn(R, m, h, generator=gen, dtype=torch.float64)
    y = torch.nn.functional.one_hot(torch.randint(0, K, (R, m), generator=gen), K).double()
    W, b = torch.randn(R, K, h, generator=gen, dtype=torch.float64), torch.zeros(R, K, dtype=torch.float64)
    Ws, bs = torch.randn(R, K, h, generator=gen, dtype=torch.float64), torch.zeros(R, K, dtype=torch.float64)
    new = greedy_features(f, y, W, b, Ws, bs, lr=0.1, epsilon=0.3, iterations=10)
    before, after = (_scores(x, y, W, b, W - Ws, b - bs, 0.1) for x in (f, new))
    assert (after <= before + 1e-12).all() and (after < before - 1e-6).any()
    assert (_angle(new, f) <= 0.3 + 1e-9).all()


def test_train_performative_shapes_and_shared_runs():
    data = digits_images()
    spec = NetSpec("mlp", (1, 8, 8), 10, width=8, depth=1)
    result = train_performative(spec, data, policy="performative", runs=2, steps=6, batch_size=8, record_every=3)
    assert result.steps == [3, 6] and result.test_accuracy.shape == (2, 2) and result.final.shape == (2,)
    sgd = train_performative(spec, data, policy="sgd", runs=2, steps=20, batch_size=8)
    alone = train_performative(spec, data, policy="sgd", runs=1, steps=20, batch_size=8, seed=1)
    assert torch.allclose(sgd.final[1:], alone.final)  # run r depends on its own seed only
    assert float(sgd.final.mean()) > 0.2  # learns beyond chance (0.1) in 20 steps


@pytest.mark.parametrize("kwargs, match", [({"policy": "best"}, "policy"), ({"epsilon": 4.0}, "epsilon"),
                                           ({"runs": 0}, "runs")])
def test_train_performative_rejects_bad_arguments(kwargs, match):
    args = {"policy": "sgd", "runs": 1, "steps": 1} | kwargs
    with pytest.raises(ValueError, match=match):
        train_performative(NetSpec("mlp", (1, 8, 8), 10, width=4), digits_images(), **args)


def test_private_dht_keeps_every_sample_outside_the_privacy_set():
    problem = problems.digits(runs=2, seed=0, project_dim=8, learner="softmax")
    pool = problem.X[0]
    phi = train_perceptual(pool, problem.y[0].argmax(-1), hidden=8, steps=50)
    eps = 1.0
    distances: list = []
    teacher = PrivateDHTTeacher(phi, pool[:20], eps, iterations=5, restarts=1, distances=distances)
    traj = teach(problem, Softmax(problem.dim, 10), teacher, 5, 0.1, batch_size=2, record=("distance",))
    D = torch.stack(distances)
    assert D.shape == (5, 2, 2) and float(D.min()) >= eps
    assert (traj["distance"][:, -1] < traj["distance"][:, 0]).all()
    assert float(private_distance(phi, pool[None, :20], pool[:20]).max()) == pytest.approx(0.0, abs=1e-9)


def test_private_dht_rejects_bad_arguments():
    phi = train_perceptual(torch.randn(10, 3, dtype=torch.float64), torch.arange(10) % 2, steps=0)
    with pytest.raises(ValueError, match="private"):
        PrivateDHTTeacher(phi, torch.zeros(0, 3), 1.0)
    with pytest.raises(ValueError, match="epsilon"):
        PrivateDHTTeacher(phi, torch.zeros(2, 3), -1.0)
    with pytest.raises(ValueError, match="labels"):
        train_perceptual(torch.randn(10, 3), torch.arange(9))
    assert math.isfinite(float(phi(torch.zeros(1, 3)).sum()))
