"""Sampling filters and repetition-aware sampling."""

import pytest
import torch

from valle.errors import ConfigError
from valle.model.sampling import NearestInExpectation, Sampler, SamplingConfig, filter_logits

LOGITS = torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0])


def test_top_k_keeps_the_k_largest():
    kept = filter_logits(LOGITS, top_k=2)
    assert torch.isfinite(kept).tolist() == [True, True, False, False, False]
    assert torch.equal(filter_logits(LOGITS, top_k=0), LOGITS) and torch.equal(filter_logits(LOGITS, top_k=99), LOGITS)


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    p = LOGITS.softmax(-1)  # 0.636, 0.234, 0.086, ...
    assert torch.isfinite(filter_logits(LOGITS, top_p=0.5)).tolist() == [True, False, False, False, False]
    assert torch.isfinite(filter_logits(LOGITS, top_p=float(p[0] + p[1]) - 1e-4)).tolist() == [True, True, False, False, False]
    assert torch.isfinite(filter_logits(LOGITS, top_p=0.95)).sum() == 3
    assert torch.isfinite(filter_logits(LOGITS, top_p=1e-9)).sum() == 1  # never empty


def test_temperature_zero_is_greedy_and_sampling_follows_the_distribution():
    assert Sampler(SamplingConfig(temperature=0, repetition_aware=False))(LOGITS, []) == 0
    sampler = Sampler(SamplingConfig(top_k=0, top_p=1.0, repetition_aware=False), seed=0)
    draws = torch.tensor([sampler(LOGITS, []) for _ in range(4000)])
    frequencies = torch.bincount(draws, minlength=5) / 4000
    torch.testing.assert_close(frequencies, LOGITS.softmax(-1), atol=0.03, rtol=0)


def test_seed_makes_sampling_reproducible():
    a, b = Sampler(seed=7), Sampler(seed=7)
    assert [a(LOGITS, []) for _ in range(50)] == [b(LOGITS, []) for _ in range(50)]


def test_repetition_aware_sampling_breaks_loops():
    peaked = torch.tensor([3.0, 2.0, 2.0, 2.0, 2.0])  # p = 0.405 for token 0, 0.149 for each other
    greedy_nucleus = SamplingConfig(top_p=0.4, ras_window=10, ras_threshold=0.1)  # nucleus: token 0 alone
    ras = Sampler(greedy_nucleus, seed=0)
    assert ras(peaked, [1, 2, 3]) == 0  # no repetition: the nucleus choice stands
    looped = [0] * 10
    draws = [ras(peaked, looped) for _ in range(2000)]
    assert 0.55 < sum(d != 0 for d in draws) / 2000 < 0.65  # the full distribution: 1 - 0.405
    plain = Sampler(SamplingConfig(top_p=0.4, repetition_aware=False), seed=0)
    assert {plain(peaked, looped) for _ in range(200)} == {0}


@pytest.mark.parametrize(("options", "message"), [
    ({"temperature": -1}, "temperature"), ({"temperature": float("nan")}, "finite"), ({"temperature": float("inf")}, "finite"),
    ({"top_k": -2}, "top_k"), ({"top_p": 0}, "top_p"), ({"top_p": 1.5}, "top_p"), ({"top_p": float("nan")}, "top_p"),
    ({"ras_window": 0}, "ras_window"), ({"variance": -0.5}, "variance must be in"), ({"variance": float("nan")}, "variance"),
    ({"voice_feedback": -1}, "voice_feedback must be in"), ({"voice_feedback": float("inf")}, "voice_feedback"),
    ({"prompt_map": -0.1}, "prompt_map must be in"), ({"prompt_map": float("nan")}, "prompt_map"), ({"prompt_map": 11}, "prompt_map"),
    ({"prompt_neighbours": -0.1}, "prompt_neighbours must be in"), ({"prompt_neighbours": 1.5}, "prompt_neighbours"),
    ({"prompt_neighbours": float("nan")}, "prompt_neighbours"),
])
def test_bad_sampling_settings(options, message):
    with pytest.raises(ConfigError, match=message):
        SamplingConfig(**options)


@pytest.mark.parametrize("temperature", [1e-300, 1e-30, 1e-6, 1e6])
def test_extreme_temperatures_still_give_a_valid_token(temperature):
    logits = torch.tensor([3.0, 2.0, float("-inf"), 1.0])
    tokens = {Sampler(SamplingConfig(temperature=temperature, repetition_aware=False), seed=s)(logits, []) for s in range(30)}
    assert tokens == {0} if temperature < 1 else tokens <= {0, 1, 3} and len(tokens) > 1


def test_a_vanishing_top_p_keeps_the_best_token():
    logits = torch.randn(33, generator=torch.Generator().manual_seed(0))
    kept = filter_logits(logits, top_p=5.8e-130)  # found by the server fuzz: it rounds to 0 in float32 and dropped every token
    assert torch.isfinite(kept).sum() == 1 and int(kept.argmax()) == int(logits.argmax())


def test_upper_levels_can_be_sampled_at_their_own_temperature():
    logits = torch.tensor([0.0, 1.0, 3.0, 0.5])
    greedy_above = Sampler(SamplingConfig(temperature=5.0, upper_temperature=0.0), seed=0)
    assert {greedy_above(logits, [], level=2) for _ in range(50)} == {2}  # the most likely, always
    assert len({greedy_above(logits, [], level=0) for _ in range(50)}) > 1  # level 1 still sampled hot
    same = Sampler(SamplingConfig(temperature=5.0), seed=0)
    assert len({same(logits, [], level=2) for _ in range(50)}) > 1  # by default every level is sampled alike
    with pytest.raises(ConfigError, match="upper_temperature must be a finite number >= 0"):
        SamplingConfig(upper_temperature=-1.0)


def test_the_nar_picks_the_code_nearest_on_average_to_the_true_one():
    # One level, four codes on a line: a small vector at 0 and three far from it.
    codebooks = torch.tensor([[[0.1], [3.0], [-3.0], [2.0]]])
    choose = NearestInExpectation(codebooks)
    sure = torch.tensor([[0.0, 9.0, 0.0, 0.0]])  # code 1 all but certain
    torn = torch.tensor([[0.0, 1.0, 1.0, 0.0]])  # 3 or -3: the likeliest alone (code 1) misses by 6 half the time
    assert choose(sure, 0).tolist() == [1]
    assert int(torn.argmax()) == 1 and choose(torn, 0).tolist() == [0]  # the small vector in between misses by 3
    assert choose(torch.cat([sure, torn]), 0).tolist() == [1, 0]  # frame by frame
    with pytest.raises(ConfigError, match="nar_decoding must be one of nearest, greedy"):
        SamplingConfig(nar_decoding="beam")
