"""Multi-scale samplers (trainers/samplers.py): the resolution set and batch rule of card 11, the step count of the
variable-batch sampler, curriculum stages, ranks that agree on every step's size without communicating, and the
crop/resize that builds each step's images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainers.data import resize_bilinear
from trainers.samplers import (MultiScaleSampler, SamplerConfig, make_divisible, random_resized_crop,
                               resolution_pairs, size_list)

DIGITS = SamplerConfig(kind="variable", base_size=32, min_size=16, max_size=48, scales=5, divisor=8)


def test_card_resolution_set_and_batches() -> None:
    sizes = size_list(32, 16, 48, 5, 8)
    assert sizes == [16, 24, 32, 40, 48]
    pairs = resolution_pairs((32, 32), sizes, sizes, 64, variable=True)
    assert [b for _, _, b in pairs] == [256, 113, 64, 40, 28]
    assert all(abs(b * h * w - 64 * 32 * 32) / (64 * 32 * 32) < 0.05 for h, w, b in pairs)  # ~65k pixels each
    assert [b for _, _, b in resolution_pairs((32, 32), sizes, sizes, 64, variable=False)] == [64] * 5


def test_resnet50_recipe_reference_numbers() -> None:
    """10 scales over 128-320 with divisor 32 collapse to 7 sizes; b0 = 128 at 224 (the card's worked example)."""
    sizes = size_list(224, 128, 320, 10, 32)
    assert sizes == [128, 160, 192, 224, 256, 288, 320]
    assert [b for _, _, b in resolution_pairs((224, 224), sizes, sizes, 128, True)] == [392, 250, 174, 128, 98, 77, 62]
    assert make_divisible(100, 32) == 96 and make_divisible(20, 32) == 32  # nearest multiple, never below divisor


def test_non_square_sizes_pair_by_rank() -> None:
    pairs = resolution_pairs((32, 64), [16, 32], [32, 64], 8, variable=True)
    assert pairs == [(16, 32, 32), (32, 64, 8)]  # zipped (h, w), not a 2 x 2 grid


def test_steps_per_epoch_follow_the_mean_batch() -> None:
    """Card 11, condition 1's unit test: N = 100,000, mean steps per epoch over 20 epochs within 2 % of N / 100.2."""
    s = MultiScaleSampler(DIGITS, 64, 100_000, epochs=20, seed=0)
    mean_steps = s.total_steps() / 20
    assert abs(mean_steps - 100_000 / 100.2) / (100_000 / 100.2) < 0.02
    fixed = MultiScaleSampler(SamplerConfig(kind="single"), 64, 100_000, epochs=1)
    assert fixed.total_steps() == -(-100_000 // 64) and {(h, b) for h, _, b in fixed.steps(0)} == {(32, 64)}


def test_epoch_covers_every_index_and_wraps_the_last_batch() -> None:
    s = MultiScaleSampler(DIGITS, 64, 1200, epochs=3, seed=5)
    batches = list(s.epoch(1))
    assert [(b.h, b.w, len(b.indices)) for b in batches] == s.steps(1)  # every batch full, the last one wrapped
    seen = np.concatenate([b.indices for b in batches])
    assert set(seen.tolist()) == set(range(1200))
    assert len(seen) - 1200 < max(len(b.indices) for b in batches)  # only the last batch re-reads from the start
    assert s.steps(1) != s.steps(2)  # a new draw each epoch
    assert MultiScaleSampler(DIGITS, 64, 1200, epochs=3, seed=5).steps(1) == s.steps(1)  # and reproducible


def test_two_ranks_draw_identical_sizes_and_disjoint_samples() -> None:
    ranks = [MultiScaleSampler(DIGITS, 16, 1200, epochs=4, seed=3, rank=r, world=2) for r in (0, 1)]
    for epoch in range(4):
        a, b = (list(r.epoch(epoch)) for r in ranks)
        assert [(x.h, x.w, len(x.indices)) for x in a] == [(y.h, y.w, len(y.indices)) for y in b]
        ia, ib = (set(np.concatenate([x.indices for x in batches]).tolist()) for batches in (a, b))
        assert not ia & ib and ia | ib == set(range(1200))
    assert ranks[0].total_steps() == ranks[1].total_steps()


def test_uneven_ranks_take_the_same_number_of_steps() -> None:
    ranks = [MultiScaleSampler(DIGITS, 16, 1201, epochs=2, seed=0, rank=r, world=2) for r in (0, 1)]
    assert [len(list(r.epoch(0))) for r in ranks] == [len(ranks[0].steps(0))] * 2


def test_curriculum_grows_the_resolution_set() -> None:
    cfg = SamplerConfig(kind="variable", curriculum=[24, 32, 48])
    s = MultiScaleSampler(cfg, 64, 1200, epochs=30, seed=0)
    used = [{h for h, _, _ in s.steps(e)} for e in range(30)]
    assert set().union(*used[:10]) <= {16, 24} and set().union(*used[10:20]) <= {16, 24, 32}
    assert set().union(*used[20:]) == {16, 24, 32, 40, 48}
    full = MultiScaleSampler(SamplerConfig(kind="variable"), 64, 1200, epochs=30, seed=0)
    assert s.stats()["pixels"] < 0.85 * full.stats()["pixels"]  # low resolutions early: less pixel compute


def test_resize_matches_torch_and_full_crop_is_a_resize() -> None:
    x = np.random.default_rng(0).random((3, 1, 32, 32), dtype=np.float32)
    for size in (16, 24, 40, 48):
        ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=(size, size), mode="bilinear",
                                              align_corners=False).numpy()
        np.testing.assert_allclose(resize_bilinear(x, size), ref, atol=1e-5)
        crop = random_resized_crop(torch.from_numpy(x), size, size, torch.Generator().manual_seed(0), min_area=1.0)
        np.testing.assert_allclose(crop.numpy(), ref, atol=1e-5)


def test_random_crops_change_with_the_generator() -> None:
    x = torch.rand(4, 1, 32, 32)
    a = random_resized_crop(x, 24, 24, torch.Generator().manual_seed(0), 0.5)
    b = random_resized_crop(x, 24, 24, torch.Generator().manual_seed(1), 0.5)
    assert a.shape == (4, 1, 24, 24) and not torch.allclose(a, b)


@pytest.mark.parametrize("kind,expected", [("single", {32}), ("fixed", {16, 24, 32, 40, 48})])
def test_kinds_sample_their_sizes(kind: str, expected: set[int]) -> None:
    s = MultiScaleSampler(SamplerConfig(kind=kind), 64, 6400, epochs=2, seed=0)
    assert {h for e in range(2) for h, _, _ in s.steps(e)} == expected
    assert {b for e in range(2) for _, _, b in s.steps(e)} == {64}
