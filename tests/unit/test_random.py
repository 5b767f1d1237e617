"""Tests for teachtheory.random: the documented hash, the batch contract, blocks, and statistical quality.

The statistical tests use fixed seeds, so they are deterministic; each asserts a p-value above 1e-4 or a
deviation below five standard errors, which a sound generator passes and a broken mixing step fails.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from teachtheory.random import RunStreams, as_seeds

M64 = (1 << 64) - 1
G = 0x9E3779B97F4A7C15


# -- an independent reference of the documented hash, on Python ints -----------------------------------


def ref_mix(z: int) -> int:
    """SplitMix64's finalizer, written out from the module docstring."""
    z &= M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def ref_splitmix(x: int) -> int:
    """splitmix(x) = mix(x + G)."""
    return ref_mix(x + G)


def ref_word(seed: int, tag: str | int, step: int, position: int) -> int:
    """The documented word mix(K_r + S + P_p) for one (seed, tag, step, position)."""
    tag_value = zlib.crc32(tag.encode()) & 0x7FFFFFFF if isinstance(tag, str) else tag
    key = ref_splitmix(ref_splitmix(seed))
    step_key = ref_mix(ref_splitmix(tag_value) + (step + 1) * G)
    return ref_mix(key + step_key + ref_splitmix(position))


def unsigned(t: torch.Tensor) -> list[int]:
    """An int64 tensor's words as unsigned Python ints."""
    return [int(v) & M64 for v in t.reshape(-1).tolist()]


@pytest.mark.parametrize("seeds", [[0], [0, 1, -5, 2**62], [12345]])
@pytest.mark.parametrize("tag,step", [("a", 0), ("grad-sample", 3), (7, -1), ("x", 10**12)])
@pytest.mark.parametrize("count", [1, 5])
def test_words_match_the_documented_hash(seeds, tag, step, count):
    words = RunStreams(torch.tensor(seeds)).bits(tag, step, (count,))
    assert words.dtype == torch.int64 and words.shape == (len(seeds), count)
    expected = [ref_word(s, tag, step, p) for s in seeds for p in range(count)]
    assert unsigned(words) == expected


def test_block_words_match_the_documented_hash():
    words = RunStreams(torch.tensor([3, 4])).bits_block("blk", 5, 3, (2,))
    assert words.shape == (2, 3, 2)
    assert unsigned(words) == [ref_word(s, "blk", 5 + i, p) for s in (3, 4) for i in range(3) for p in range(2)]


@pytest.mark.parametrize("dtype,m", [(torch.float64, 53), (torch.float32, 24), (torch.float16, 11),
                                     (torch.bfloat16, 8)])
@pytest.mark.parametrize("runs,count", [(1, 1), (3, 257)])
def test_uniform_is_the_top_bits_exactly(dtype, m, runs, count):
    s = RunStreams(as_seeds(11, runs))
    u = s.uniform("u", 2, (count,), dtype=dtype)
    assert u.dtype == dtype and u.shape == (runs, count)
    expected = torch.tensor([(w >> (64 - m)) * 2.0**-m for w in unsigned(s.bits("u", 2, (count,)))],
                            dtype=torch.float64).reshape(runs, count)
    assert torch.equal(u.double(), expected)
    assert float(u.min()) >= 0.0 and float(u.max()) < 1.0


@pytest.mark.parametrize("high", [1, 2, 3, 7, 1000, 10**6 + 3, 2**31 - 1, 2**32 - 1, 2**32])
@pytest.mark.parametrize("runs,count", [(1, 1), (4, 300)])
def test_integers_are_the_exact_multiply_shift(high, runs, count):
    # floor(word * high / 2^64) exactly: each value has floor or ceil of 2^64 / high words, a bias below high / 2^64.
    s = RunStreams(as_seeds(5, runs))
    k = s.integers("k", 9, high, (count,))
    assert k.dtype == torch.int64 and k.shape == (runs, count)
    assert k.reshape(-1).tolist() == [(w * high) >> 64 for w in unsigned(s.bits("k", 9, (count,)))]


# -- the batch contract ----------------------------------------------------------------------------------

SHAPES = [(), (1,), (2,), (13,), (3, 5), (0,)]


def draws(s: RunStreams, tag, step, shape, dtype):
    """Every public draw of one step (and the blocks' first and last steps) for one shape and dtype."""
    return {
        "bits": s.bits(tag, step, shape),
        "uniform": s.uniform(tag, step, shape, dtype=dtype),
        "normal": s.normal(tag, step, shape, dtype=dtype),
        "integers": s.integers(tag, step, 1001, shape),
        "bits_block": s.bits_block(tag, step, 3, shape),
        "uniform_block": s.uniform_block(tag, step, 3, shape, dtype=dtype),
        "normal_block": s.normal_block(tag, step, 3, shape, dtype=dtype),
        "integers_block": s.integers_block(tag, step, 3, 1001, shape),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_a_batch_equals_its_single_runs_bit_for_bit(dtype, shape):
    seeds = [4, -17, 2**40 + 1, 0, 999]
    batch = draws(RunStreams(torch.tensor(seeds)), "contract", 6, shape, dtype)
    for name, value in batch.items():
        assert value.shape[0] == len(seeds), name
        if name in ("uniform", "normal", "uniform_block", "normal_block"):
            assert value.dtype == dtype, name
        else:
            assert value.dtype == torch.int64, name
    for r, seed in enumerate(seeds):
        for streams in (RunStreams(torch.tensor([seed])), RunStreams(torch.tensor(seeds)).subset([r])):
            alone = draws(streams, "contract", 6, shape, dtype)
            for name in batch:
                assert torch.equal(alone[name][0], batch[name][r]), (name, r)


@settings(max_examples=15, deadline=None)
@given(seeds=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=5, unique=True),
       step=st.integers(-(2**40), 2**40), tag=st.one_of(st.text(min_size=1, max_size=8), st.integers(0, 2**40)),
       shape=st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_batch_contract_holds_for_any_seeds_tag_step_and_shape(seeds, step, tag, shape, dtype):
    batch = draws(RunStreams(torch.tensor(seeds)), tag, step, shape, dtype)
    permuted = list(reversed(range(len(seeds))))
    reordered = draws(RunStreams(torch.tensor([seeds[i] for i in permuted])), tag, step, shape, dtype)
    for name in batch:
        assert torch.equal(reordered[name], batch[name][permuted]), name
    for r, seed in enumerate(seeds):
        alone = draws(RunStreams(torch.tensor([seed])), tag, step, shape, dtype)
        for name in batch:
            assert torch.equal(alone[name][0], batch[name][r]), name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_blocks_equal_the_step_by_step_draws(dtype):
    s = RunStreams(as_seeds(21, 3))
    step0, n, shape = 40, 5, (3, 3)
    blocks = {
        "bits": s.bits_block("b", step0, n, shape),
        "uniform": s.uniform_block("b", step0, n, shape, dtype=dtype),
        "normal": s.normal_block("b", step0, n, shape, dtype=dtype),
        "integers": s.integers_block("b", step0, n, 77, shape),
    }
    for i in range(n):
        single = {
            "bits": s.bits("b", step0 + i, shape),
            "uniform": s.uniform("b", step0 + i, shape, dtype=dtype),
            "normal": s.normal("b", step0 + i, shape, dtype=dtype),
            "integers": s.integers("b", step0 + i, 77, shape),
        }
        for name, block in blocks.items():
            assert block.shape == (3, n, *shape)
            assert torch.equal(block[:, i], single[name]), (name, i)
    assert s.uniform_block("b", step0, 0, shape).shape == (3, 0, 3, 3)


def test_a_prefix_of_the_first_axis_is_the_prefix_of_a_longer_draw():
    s = RunStreams(as_seeds(2, 2))
    for short, long in (((3, 5), (8, 5)), ((7,), (12,)), ((1, 3), (2, 3))):
        n = short[0]
        assert torch.equal(s.normal("p", 1, short), s.normal("p", 1, long)[:, :n])
        assert torch.equal(s.uniform("p", 1, short), s.uniform("p", 1, long)[:, :n])
        assert torch.equal(s.integers("p", 1, 10, short), s.integers("p", 1, 10, long)[:, :n])


def test_the_torch_path_gives_the_same_numbers_as_the_numpy_path():
    # Devices other than the CPU hash with torch int64 tensors; forced here on the CPU.
    fast = RunStreams(as_seeds(8, 3))
    slow = RunStreams(as_seeds(8, 3))
    slow._use_numpy = False
    for dtype in (torch.float32, torch.float64):
        for shape in ((), (1,), (7,), (2, 3)):
            a, b = draws(fast, "dev", 3, shape, dtype), draws(slow, "dev", 3, shape, dtype)
            for name in a:
                assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), (name, shape, dtype)
    one_fast, one_slow = RunStreams(torch.tensor([5])), RunStreams(torch.tensor([5]))
    one_slow._use_numpy = False
    assert torch.equal(one_fast.integers("t", 0, 2**32, (1,)), one_slow.integers("t", 0, 2**32, (1,)))


def test_returned_tensors_do_not_alias_cached_keys():
    s = RunStreams(as_seeds(1, 2))
    for draw in (lambda: s.bits("c", 0, (5000,)), lambda: s.bits("c", 0, (3,)),
                 lambda: RunStreams(torch.tensor([1])).bits("c", 0, (1,))):
        first = draw().clone()
        draw().zero_()
        assert torch.equal(draw(), first)


def test_same_seed_gives_the_same_numbers_and_seeds_tags_steps_positions_differ():
    a = RunStreams(torch.tensor([3, 4])).bits("x", 0, (6,))
    assert torch.equal(a, RunStreams(torch.tensor([3, 4])).bits("x", 0, (6,)))
    variants = [a[1], RunStreams(torch.tensor([3])).bits("y", 0, (6,))[0],
                RunStreams(torch.tensor([3])).bits("x", 1, (6,))[0]]
    for v in variants:
        assert not torch.equal(a[0], v)
    assert len(set(a.reshape(-1).tolist())) == a.numel()


# -- statistical quality ---------------------------------------------------------------------------------

P_MIN = 1e-4


@pytest.mark.parametrize("axis", ["positions", "steps", "runs"])
def test_uniforms_pass_a_64_bin_chi_square_along_each_axis(axis):
    n = 2**18
    if axis == "positions":
        u = RunStreams(torch.tensor([77])).uniform("chi", 0, (n,))
    elif axis == "steps":
        u = RunStreams(torch.tensor([77])).uniform_block("chi", 0, n, (1,))
    else:
        u = RunStreams(as_seeds(77, n)).uniform("chi", 0, (1,))
    counts = torch.bincount((u.reshape(-1) * 64).long(), minlength=64).numpy()
    assert counts.size == 64
    assert stats.chisquare(counts).pvalue > P_MIN


def test_float32_uniforms_pass_a_chi_square():
    u = RunStreams(as_seeds(3, 4)).uniform("chi32", 0, (2**16,), dtype=torch.float32)
    counts = torch.bincount((u.reshape(-1) * 64).long(), minlength=64).numpy()
    assert stats.chisquare(counts).pvalue > P_MIN


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_normal_moments_and_distribution(dtype):
    z = RunStreams(as_seeds(9, 8)).normal("moments", 1, (125_000,), dtype=dtype).double().reshape(-1).numpy()
    n = z.size
    assert abs(z.mean()) < 5 * math.sqrt(1 / n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(stats.skew(z)) < 5 * math.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) < 5 * math.sqrt(24 / n)
    assert stats.kstest(z[:200_000], "norm").pvalue > P_MIN
    tail = float(np.mean(np.abs(z) > 3))
    p3 = 2 * stats.norm.sf(3)
    assert abs(tail - p3) < 5 * math.sqrt(p3 * (1 - p3) / n)


def test_normal_pairs_are_uncorrelated_and_their_squares_too():
    # Positions 2k and 2k + 1 share one Box-Muller pair: r cos t and r sin t are independent normals.
    z = RunStreams(torch.tensor([5])).normal("pairs", 0, (400_000,))[0].numpy()
    se = 5 / math.sqrt(z.size / 2)
    for a, b in ((z[0::2], z[1::2]), (z[0::2] ** 2, z[1::2] ** 2), (z[1:-1:2], z[2::2])):
        assert abs(np.corrcoef(a, b)[0, 1]) < se


def test_adjacent_positions_steps_runs_and_tags_are_uncorrelated():
    n = 100_000
    s = RunStreams(as_seeds(0, 2))
    u = s.uniform("a", 0, (n,))
    pairs = {
        "positions": (u[0, :-1], u[0, 1:]),
        "runs (seeds 0 and 1)": (u[0], u[1]),
        "tags": (u[0], s.uniform("b", 0, (n,))[0]),
        "steps": (u[0], s.uniform("a", 1, (n,))[0]),
    }
    block = RunStreams(torch.tensor([0])).uniform_block("a", 0, n, (1,))[0, :, 0]
    pairs["consecutive steps"] = (block[:-1], block[1:])
    for name, (x, y) in pairs.items():
        assert not torch.equal(x, y), name
        corr = float(torch.corrcoef(torch.stack([x, y]))[0, 1])
        assert abs(corr) < 5 / math.sqrt(x.numel()), name


def _bit_frequency_p(words: np.ndarray) -> float:
    """p-value that the 64 bits of the words are fair coins (chi-square of the 64 binomial z-scores)."""
    n = words.size
    ones = np.unpackbits(np.ascontiguousarray(words).view(np.uint8)).reshape(n, 64).sum(0)
    return float(stats.chi2.sf((((ones - n / 2) / math.sqrt(n / 4)) ** 2).sum(), 64))


def _u64(t: torch.Tensor) -> np.ndarray:
    """An int64 tensor's words as a uint64 array."""
    return t.numpy().view(np.uint64)


def test_additive_keys_leave_no_rectangle_structure():
    # The word is mix(K_run + S_step + P_position); if mix let the additive structure through, the XOR of the
    # four words at the corners of a (run, step), (step, position) or (run, position) rectangle would be biased.
    n = 256
    faces = {
        "run x step": _u64(RunStreams(as_seeds(1000, n)).bits_block("rect", 0, n, (1,)))[:, :, 0],
        "step x position": _u64(RunStreams(as_seeds(1000, 1)).bits_block("rect", 0, n, (n,)))[0],
        "run x position": _u64(RunStreams(as_seeds(1000, n)).bits("rect", 0, (n,))),
    }
    for name, a in faces.items():
        corners = a[:-1, :-1] ^ a[1:, :-1] ^ a[:-1, 1:] ^ a[1:, 1:]
        assert _bit_frequency_p(corners.ravel()) > P_MIN, name
        assert _bit_frequency_p(a.ravel()) > P_MIN, name


@pytest.mark.parametrize("high", [3, 10, 1000])
def test_integers_are_unbiased_for_ranges_that_are_not_powers_of_two(high):
    n = 300_000
    k = RunStreams(as_seeds(4, 3)).integers("ints", 0, high, (n // 3,)).reshape(-1)
    assert int(k.min()) == 0 and int(k.max()) == high - 1
    counts = torch.bincount(k, minlength=high).numpy()
    assert stats.chisquare(counts).pvalue > P_MIN
    se = math.sqrt((1 / high) * (1 - 1 / high) / n)
    assert np.abs(counts / n - 1 / high).max() < 5 * se


# -- input checking --------------------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors():
    s = RunStreams(torch.tensor([1]))
    with pytest.raises(ValueError, match="high"):
        s.integers("i", 0, 0, (3,))
    with pytest.raises(ValueError, match="high"):
        s.integers("i", 0, 2**32 + 1, (3,))
    with pytest.raises(TypeError, match="high"):
        s.integers("i", 0, 2.5, (3,))
    with pytest.raises(ValueError, match="shape"):
        s.uniform("u", 0, (2, -1))
    with pytest.raises(TypeError, match="shape"):
        s.uniform("u", 0, (2.0,))
    with pytest.raises(TypeError, match="step"):
        s.uniform("u", 0.5, (2,))
    with pytest.raises(TypeError, match="dtype"):
        s.uniform("u", 0, (2,), dtype=torch.int32)
    with pytest.raises(TypeError, match="dtype"):
        s.normal("u", 0, (2,), dtype=torch.int64)
    with pytest.raises(TypeError, match="tag"):
        s.bits(1.5, 0, (2,))
    with pytest.raises(ValueError, match="n_steps"):
        s.uniform_block("u", 0, -1, (2,))
    with pytest.raises(TypeError, match="step0"):
        s.normal_block("u", None, 2, (2,))
