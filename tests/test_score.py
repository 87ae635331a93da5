"""The training-free scores: each kernel against its pairwise definition, and the score's edge cases."""

from __future__ import annotations

import math

import torch

import pytest

from spikenas.score import KernelAccumulator, candidate_kernels, finite_mean, neurons_flat
from spikenas.score.hamming import Hamming
from spikenas.score.sahd import SAHD


def test_sahd_kernel_matches_pairwise_definition():
    spikes = (torch.rand(2, 5, 40, generator=torch.Generator().manual_seed(0)) > 0.6).float()
    kernel = SAHD(alpha=0.5).kernel(spikes)
    t, b, n = spikes.shape
    expected = torch.zeros(b, b, dtype=torch.float64)
    for step in range(t):
        x = spikes[step].double()
        rates = x.mean(1)
        for i in range(b):
            for j in range(b):
                hamming = (x[i] != x[j]).sum()
                norm = n * (rates[i] * (1 - rates[j]) + (1 - rates[i]) * rates[j])
                d = 0.5 * hamming / norm if norm > 0 else 0.0
                expected[i, j] += n - d
    torch.testing.assert_close(kernel, expected)



def test_hamming_kernel_is_n_minus_the_distance_summed_over_steps():
    spikes = (torch.rand(3, 4, 30, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    kernel = Hamming().kernel(spikes)
    expected = sum(30 - (spikes[t][:, None, :] != spikes[t][None, :, :]).sum(-1).double() for t in range(3))
    torch.testing.assert_close(kernel, expected)
    assert Hamming().reduce(kernel / 3) == torch.linalg.slogdet(expected / 3).logabsdet.item()


def test_several_spikes_in_a_step_count_as_one_fired_neuron():
    """sinabs's neurons fire counts (0, 1, 2, ...): the kernel is of which neurons fired."""
    spikes = (torch.rand(3, 4, 30, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    counts = spikes * torch.randint(1, 4, spikes.shape, generator=torch.Generator().manual_seed(2))
    assert counts.max() > 1
    torch.testing.assert_close(Hamming().kernel(counts), Hamming().kernel(spikes))


def test_an_accumulator_without_spikes_scores_minus_infinity_and_merges():
    acc = KernelAccumulator(SAHD())
    assert acc.value() == -math.inf
    other = KernelAccumulator(SAHD())
    other.add((torch.rand(2, 5, 20, generator=torch.Generator().manual_seed(2)) > 0.5).float())
    acc.merge(other.kernel, other.count)
    assert acc.count == 2 and torch.equal(acc.kernel, other.kernel) and acc.value() == other.value()
    acc.merge(None, 0)
    assert acc.count == 2


def test_a_non_finite_value_makes_the_mean_minus_infinity():
    assert finite_mean([1.0, 3.0]) == 2.0
    assert finite_mean([1.0, math.nan]) == -math.inf and finite_mean([]) == -math.inf


def test_a_channels_last_layer_is_scored_without_a_copy_and_to_the_same_kernel():
    spikes = (torch.rand(5, 6, 3, 4, 7, generator=torch.Generator().manual_seed(0)) > 0.6).float()
    last = spikes.reshape(30, 3, 4, 7).contiguous(memory_format=torch.channels_last).reshape(5, 6, 3, 4, 7)
    assert neurons_flat(last).data_ptr() == last.data_ptr() and neurons_flat(last).is_contiguous()
    torch.testing.assert_close(neurons_flat(spikes), spikes.flatten(2), rtol=0, atol=0)
    for score in (SAHD(), Hamming()):
        plain, permuted = KernelAccumulator(score), KernelAccumulator(score)
        plain.add(spikes)
        permuted.add(last)
        assert torch.equal(plain.kernel, permuted.kernel)  # integer counts: exact in any order


@pytest.mark.parametrize("score", [SAHD(), SAHD(alpha=0.8, neuron_normalised=False), Hamming()], ids=["sahd", "sahd-ablation", "hamming"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_a_stacked_groups_kernels_equal_each_candidates_own_bit_for_bit(score, channels_last):
    """Batched scoring computes the kernels of K candidates' spikes ``[T, K, B, ...]`` (laid out
    candidate by candidate, as a stacked LIF layer leaves them) in one call; each must be the
    kernel its candidate gets alone, or stacked and single scores would differ."""
    g = torch.Generator().manual_seed(0)
    per_candidate = (torch.rand(4, 5, 6, 3, 5, 5, generator=g) < torch.linspace(0.05, 0.9, 6).view(1, 1, 6, 1, 1, 1)).float()
    per_candidate[1, :, 2] = 0  # a silent sample, and a saturated one: the rate guard
    per_candidate[1, :, 3] = 1
    if channels_last:
        per_candidate = torch.stack([c.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(c.shape) for c in per_candidate])
    stacked = per_candidate.transpose(0, 1)  # [T, K, B, C, H, W]
    alone = [score.kernel(neurons_flat(c)) for c in per_candidate]
    batched = candidate_kernels(score, stacked)
    assert len(batched) == 4 and all(torch.equal(a, b) for a, b in zip(alone, batched))
    assert all(torch.equal(a, b) for a, b in zip(alone, candidate_kernels(_OneAtATime(score), stacked)))


class _OneAtATime:
    """A score without ``batched``, as a third party may write one."""

    def __init__(self, score) -> None:
        self.kernel = lambda spikes: score.kernel(spikes) if spikes.dim() == 3 else pytest.fail("batched call")


def test_scoring_channels_last_keeps_the_ranking_of_200_candidates(tiny_macro, neuron):
    """The search scores in the channels-last layout (other convolution kernels, other float
    rounding): over 200 random candidates its ranking is the contiguous layout's within
    Kendall tau-b 0.99 (issue 13's bar for any faster way to score)."""
    import random

    from torchmetrics.functional.regression import kendall_rank_corrcoef

    from spikenas.search.cell_search import build_context
    from spikenas.space import Genotype, SearchSpaceConfig

    images = torch.randn(16, *tiny_macro.input_shape, generator=torch.Generator().manual_seed(0))
    space = SearchSpaceConfig(cells=2)
    last = build_context(tiny_macro, neuron, space, [images], channels_last=True)
    plain = build_context(tiny_macro, neuron, space, [images], channels_last=False)
    assert last.engine.batches[0].is_contiguous(memory_format=torch.channels_last) and plain.engine.batches[0].is_contiguous()
    rng = random.Random(0)
    genotypes = [Genotype(tuple(last.cells.sample(rng) for _ in range(2))) for _ in range(200)]
    a = torch.tensor([last.engine.full_score(g) for g in genotypes], dtype=torch.float64)
    b = torch.tensor([plain.engine.full_score(g) for g in genotypes], dtype=torch.float64)
    finite = torch.isfinite(a) & torch.isfinite(b)
    assert finite.sum() > 150 and torch.equal(torch.isfinite(a), torch.isfinite(b))
    assert kendall_rank_corrcoef(a[finite], b[finite], variant="b").item() >= 0.99


def test_sahd_layer_weighs_every_layer_the_same_whatever_its_width():
    from spikenas.score.sahd import SAHD

    g = torch.Generator().manual_seed(0)
    narrow = (torch.rand(2, 6, 10, generator=g) < 0.3).float()  # [T, B, N=10]
    wide = (torch.rand(2, 6, 1000, generator=g) < 0.3).float()
    plain, layer = SAHD(), SAHD(per_layer=True)
    assert layer.name == "sahd_layer"
    assert torch.allclose(layer.kernel(narrow), plain.kernel(narrow) / 10)
    assert torch.allclose(layer.kernel(wide), plain.kernel(wide) / 1000)
    # in SAHD the wide layer is 100x the narrow one's weight in the kernel; here both are O(T)
    assert plain.kernel(wide).abs().max() > 50 * plain.kernel(narrow).abs().max()
    assert layer.kernel(wide).abs().max() < 2 * layer.kernel(narrow).abs().max()
