"""The AR and NAR stages: what each position may see, KV-cache decoding, and learning."""

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from valle.errors import ConfigError
from valle.model.alignment import attention_maps, head_monotonicity, monotonic_path, spearman
from valle.model.ar import ADVANCE, NOT_SAID, ARModel
from valle.model.config import ModelConfig, preset
from valle.model.layers import Attention, LayerCache
from valle.model.linear import ONEDNN, Linear
from valle.model.nar import NARBatch, NARModel, split_prompt
from valle.model.sampling import Sampler, SamplingConfig
from valle.model.stage import IGNORE

V, K, N_PHONEMES = 16, 4, 20


def config(**overrides) -> ModelConfig:
    return preset("tiny", n_phonemes=N_PHONEMES, codebook_size=V, n_codebooks=K, **overrides)


def batch(seed: int = 0, lengths: tuple[int, ...] = (30, 22), phoneme_lengths: tuple[int, ...] = (7, 5)):
    g = torch.Generator().manual_seed(seed)
    phonemes = torch.randint(0, N_PHONEMES, (len(lengths), max(phoneme_lengths)), generator=g)
    codes = torch.randint(0, V, (len(lengths), K, max(lengths)), generator=g)
    return phonemes, torch.tensor(phoneme_lengths), codes, torch.tensor(lengths)


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


# (group_size, ar_levels): the paper's AR, VALL-E 2's groups, and the depth decoder without and with groups.
LAYOUTS = [(1, 1), (2, 1), (1, 3), (2, 3)]


def in_depth_order(logits: torch.Tensor) -> torch.Tensor:
    """AR logits `[B, n, g, k, V + 1]` -> `[B, n * g * k, V + 1]`: frame by frame, level by level."""
    return logits.flatten(1, 3)


@pytest.mark.parametrize("group_size,ar_levels", LAYOUTS)
def test_ar_future_audio_never_changes_earlier_logits(group_size, ar_levels):
    model = ARModel(config(group_size=group_size, ar_levels=ar_levels)).eval()
    phonemes, p_lens, codes, c_lens = batch()
    before = in_depth_order(model(phonemes, p_lens, codes, c_lens).logits)
    t, level = 12, ar_levels - 1  # the first frame of a group, its top AR level
    changed = codes.clone()
    changed[:, level, t] = (changed[:, level, t] + 1) % V
    after = in_depth_order(model(phonemes, p_lens, changed, c_lens).logits)
    position = t * ar_levels + level
    assert torch.equal(before[:, :position + 1], after[:, :position + 1])  # up to the changed token itself
    next_step = (t // group_size + 1) * group_size * ar_levels
    assert not torch.allclose(before[0, next_step:], after[0, next_step:])
    if ar_levels > 1:  # within the step, the depth decoder sees it at once
        assert not torch.allclose(before[0, position + 1], after[0, position + 1])
    changed_above = codes.clone()
    changed_above[:, ar_levels:] = (changed_above[:, ar_levels:] + 1) % V  # the NAR's levels mean nothing here
    torch.testing.assert_close(in_depth_order(model(phonemes, p_lens, changed_above, c_lens).logits), before)


def test_ar_audio_sees_every_phoneme_and_text_ignores_audio():
    model = ARModel(config()).eval()
    phonemes, p_lens, codes, c_lens = batch()
    before = model(phonemes, p_lens, codes, c_lens).logits
    changed = phonemes.clone()
    changed[:, 4] = (changed[:, 4] + 1) % N_PHONEMES  # a phoneme late in the text
    assert not torch.allclose(before[:, 0], model(changed, p_lens, codes, c_lens).logits[:, 0])
    mask = ARModel.prefix_mask(torch.ones(1, 3, dtype=torch.bool), torch.ones(1, 4, dtype=torch.bool))[0, 0]
    assert not mask[:3, 3:].any()  # text queries never see audio
    assert mask[3:, :3].all() and torch.equal(mask[3:, 3:], torch.ones(4, 4, dtype=torch.bool).tril())


@pytest.mark.parametrize("group_size,ar_levels", LAYOUTS)
def test_ar_padding_never_leaks(group_size, ar_levels):
    model = ARModel(config(group_size=group_size, ar_levels=ar_levels)).eval()
    phonemes, p_lens, codes, c_lens = batch()
    batched = model(phonemes, p_lens, codes, c_lens).logits
    alone = model(phonemes[1:, :5], p_lens[1:], codes[1:, :, :22], c_lens[1:]).logits
    n = alone.shape[1]
    torch.testing.assert_close(batched[1, :n], alone[0], atol=1e-5, rtol=1e-5)
    noisy_codes, noisy_phonemes = codes.clone(), phonemes.clone()
    noisy_codes[1, :, 22:], noisy_phonemes[1, 5:] = 3, 7  # change only padding
    torch.testing.assert_close(model(noisy_phonemes, p_lens, noisy_codes, c_lens).logits[1, :n], batched[1, :n])


@pytest.mark.parametrize("history_levels", [None, 1])
@pytest.mark.parametrize("group_size,ar_levels", LAYOUTS)
def test_kv_cache_decoding_matches_full_recomputation(group_size, ar_levels, history_levels):
    """Teacher-force `generate` through its chooser and compare every choice with a full forward."""
    model = ARModel(config(group_size=group_size, ar_levels=ar_levels, history_levels=history_levels)).eval()
    phonemes, _, codes, _ = batch()
    sequence = codes[0, :, :24]
    prompt_len = 8
    seen = []

    def teacher(logits: torch.Tensor, history: list[int], level: int) -> int:
        seen.append(logits[:V].clone())  # the end token is withheld above level 1
        return int(sequence[level, len(history)])

    new = model.generate(phonemes[0], sequence[:, :prompt_len], max_frames=24 - prompt_len, choose=teacher)
    assert torch.equal(new, sequence[:ar_levels, prompt_len:])
    full = model(phonemes[:1], torch.tensor([phonemes.shape[1]]), sequence[None], torch.tensor([24])).logits
    full = in_depth_order(full)[0, :, :V]
    start = prompt_len * ar_levels
    torch.testing.assert_close(torch.stack(seen), full[start:start + len(seen)], atol=1e-5, rtol=1e-4)
    assert len(seen) == (24 - prompt_len) * ar_levels


def test_an_ar_that_reads_level_1_of_the_past_never_sees_the_past_upper_levels():
    model = ARModel(config(ar_levels=3, history_levels=1)).eval()
    phonemes, p_lens, codes, c_lens = batch()
    before = in_depth_order(model(phonemes, p_lens, codes, c_lens).logits)
    upper = codes.clone()
    upper[:, 1:3, :12] = (upper[:, 1:3, :12] + 1) % V  # levels 2-3 of the first 12 frames
    after = in_depth_order(model(phonemes, p_lens, upper, c_lens).logits)
    torch.testing.assert_close(after[:, 12 * 3:], before[:, 12 * 3:])  # later frames: the transformer never read them
    assert not torch.allclose(after[:, :12 * 3], before[:, :12 * 3])  # within a frame, the depth decoder does
    lowest = codes.clone()
    lowest[:, 0, 11] = (lowest[:, 0, 11] + 1) % V
    assert not torch.allclose(in_depth_order(model(phonemes, p_lens, lowest, c_lens).logits)[:, 12 * 3:], before[:, 12 * 3:])
    with pytest.raises(ConfigError, match="history_levels"):
        config(ar_levels=3, history_levels=4)


@pytest.mark.parametrize("group_size,ar_levels", LAYOUTS)
def test_history_noise_replaces_past_frames_in_training_only_and_never_the_targets(group_size, ar_levels):
    model = ARModel(config(group_size=group_size, ar_levels=ar_levels, dropout=0.0, history_noise=0.5))
    phonemes, p_lens, codes, c_lens = batch()
    model.eval()
    clean = model(phonemes, p_lens, codes, c_lens)
    model.train()
    noisy = model(phonemes, p_lens, codes, c_lens)
    torch.testing.assert_close(noisy.targets, clean.targets)
    torch.testing.assert_close(noisy.logits[:, 0], clean.logits[:, 0])  # the first step reads only BOS
    assert not torch.allclose(noisy.logits[:, 1:], clean.logits[:, 1:])
    with pytest.raises(ConfigError, match="history_noise and text_dropout must be in"):
        config(history_noise=1.0)


@pytest.mark.parametrize("group_size,ar_levels", LAYOUTS)
def test_self_feed_reads_the_stages_own_predictions_from_the_true_past_in_training_only(group_size, ar_levels, monkeypatch):
    model = ARModel(config(group_size=group_size, ar_levels=ar_levels, dropout=0.0, self_feed=1.0))
    phonemes, p_lens, codes, c_lens = batch()
    model.eval()
    clean = model(phonemes, p_lens, codes, c_lens)
    histories = []
    embed = model._embed_audio
    monkeypatch.setattr(model, "_embed_audio", lambda frames, *args: histories.append(frames.clone()) or embed(frames, *args))
    model.train()
    fed = model(phonemes, p_lens, codes, c_lens)
    true, own = histories  # the first pass reads the true past, the second what it predicted from it
    guessed = clean.logits[..., :model.config.codebook_size].argmax(-1).view(len(codes), -1, ar_levels)
    real = true[:, group_size:] < model.config.codebook_size  # codes, not BOS or padding
    assert real.any() and torch.equal(own[:, group_size:][real], guessed[:, :-group_size][real])
    assert torch.equal(own[~torch.cat([torch.zeros_like(real[:, :group_size]), real], 1)],
                       true[~torch.cat([torch.zeros_like(real[:, :group_size]), real], 1)])  # BOS and padding kept
    torch.testing.assert_close(fed.targets, clean.targets)  # the targets stay the true frames
    torch.testing.assert_close(fed.logits[:, 0], clean.logits[:, 0])  # the first step reads only BOS
    with pytest.raises(ConfigError, match="self_feed must be in"):
        config(self_feed=1.5)
    with pytest.raises(ConfigError, match="self_feed is an option of the AR stage"):
        NARModel(config(self_feed=0.5))


@pytest.mark.parametrize("group_size,ar_levels", LAYOUTS)
def test_batched_decoding_gives_each_request_what_it_gets_alone(group_size, ar_levels):
    """Padded together (other phoneme and prompt lengths, other caps, one stopping at EOS) == one at a time."""
    model = ARModel(config(group_size=group_size, ar_levels=ar_levels)).eval()
    phonemes, phoneme_lens, codes, _ = batch(seed=3, lengths=(30, 22, 27), phoneme_lengths=(7, 5, 3))
    requests = [(phonemes[b, :phoneme_lens[b]], codes[b, :, :n], cap) for b, (n, cap) in enumerate([(9, 12), (4, 20), (7, 6)])]
    stop_at = {1: 5}  # the second request emits EOS at its 5th new frame

    def chooser(b: int):
        def choose(logits: torch.Tensor, history: list[int], level: int) -> int:
            new = len(history) - len(requests[b][1][0]) + len(requests[b][1][0]) % group_size
            return model.eos if level == 0 and stop_at.get(b) == new else int(logits[:model.eos].argmax())
        return choose

    together = model.generate_batch([r[0] for r in requests], [r[1] for r in requests], [r[2] for r in requests],
                                    [chooser(b) for b in range(3)])
    alone = [model.generate(p, prompt, cap, chooser(b)) for b, (p, prompt, cap) in enumerate(requests)]
    assert [t.tolist() for t in together] == [a.tolist() for a in alone]
    assert [tuple(t.shape) for t in together] == [(ar_levels, 12), (ar_levels, 5), (ar_levels, 6)]


@pytest.mark.parametrize("group_size,ar_levels", LAYOUTS)
def test_guidance_pushes_the_logits_given_no_text_by_the_texts_pull_for_each_request_alone(group_size, ar_levels):
    model = ARModel(config(group_size=group_size, ar_levels=ar_levels)).eval()
    phonemes, phoneme_lens, codes, _ = batch(seed=5, lengths=(30, 22), phoneme_lengths=(7, 5))
    requests = [(phonemes[0], codes[0, :, :8], 6), (phonemes[1, :5], codes[1, :, :5], 7)]
    seen: dict[str, list[torch.Tensor]] = {}

    def greedy(name: str):
        def choose(logits: torch.Tensor, history: list[int], level: int) -> int:
            seen.setdefault(name, []).append(logits.clone())
            return int(logits[:model.eos].argmax())
        return choose

    def alone(b: int, text: torch.Tensor, name: str, guidance: float = 1.0) -> list:
        p, prompt, cap = requests[b]
        return model.generate(text, prompt, cap, greedy(name), guidance=guidance).tolist()

    guided = model.generate_batch([r[0] for r in requests], [r[1] for r in requests], [r[2] for r in requests],
                                  [greedy("w0"), greedy("w1")], guidance=[0.0, 1.0])
    assert guided[0].tolist() == alone(0, requests[0][0][:0], "no text")  # w = 0: the logits given no text
    assert guided[1].tolist() == alone(1, requests[1][0], "text")  # w = 1 beside it: as if unguided
    alone(0, requests[0][0], "cond")
    alone(0, requests[0][0], "w3", guidance=3.0)
    first = seen["no text"][0] + 3.0 * (seen["cond"][0] - seen["no text"][0])  # the first choice, same history
    torch.testing.assert_close(seen["w3"][0], first, atol=1e-4, rtol=1e-4)
    with pytest.raises(ConfigError, match="guidance must be"):
        SamplingConfig(guidance=-1.0)


@pytest.mark.parametrize("phoneme_pointer", [False, True])
def test_prompt_guidance_pushes_the_logits_given_the_target_text_alone_by_the_prompts_pull(phoneme_pointer):
    model = pointer_model() if phoneme_pointer else ARModel(config(group_size=2, ar_levels=3)).eval()
    phonemes, _, codes, _ = batch(seed=5, lengths=(30, 22), phoneme_lengths=(7, 5))
    start = 3  # the first 3 phonemes are the prompt's
    requests = [(phonemes[0], codes[0, :, :8], 6), (phonemes[1, :5], codes[1, :, :5], 7)]
    seen: dict[str, list[torch.Tensor]] = {}

    def greedy(name: str):
        def choose(logits: torch.Tensor, history: list[int], level: int) -> int:
            if level == ADVANCE:  # the pointer moves one phoneme a step, whatever the voice
                return 1
            seen.setdefault(name, []).append(logits[:model.eos].clone())  # the end token may be withheld (-inf)
            return int(logits[:model.eos].argmax())
        return choose

    def alone(name: str, text_start: int = start, prompt: torch.Tensor = requests[0][1], **guidance) -> list:
        text = requests[0][0][start - text_start:]
        return model.generate(text, prompt, 6, greedy(name), text_start=text_start, **guidance).tolist()

    guided = model.generate_batch([r[0] for r in requests], [r[1] for r in requests], [r[2] for r in requests],
                                  [greedy("w0"), greedy("w1")], text_starts=[start, 1], prompt_guidance=[0.0, 1.0])
    assert guided[0].tolist() == alone("no prompt", 0, requests[0][1][:, :0])  # w = 0: the target's text alone
    assert guided[1].tolist() == model.generate(*requests[1], greedy("r1"), text_start=1).tolist()
    alone("cond")
    alone("w3", prompt_guidance=3.0)
    torch.testing.assert_close(seen["w3"][0], seen["no prompt"][0] + 3.0 * (seen["cond"][0] - seen["no prompt"][0]),
                               atol=1e-4, rtol=1e-4)
    model.generate(requests[0][0][:0], requests[0][1], 6, greedy("no text"))  # text guidance's twin: the prompt alone
    alone("both", guidance=2.0, prompt_guidance=3.0)  # each condition adds its own push
    c, nt, np_ = seen["cond"][0], seen["no text"][0], seen["no prompt"][0]
    torch.testing.assert_close(seen["both"][0], c + (c - nt) + 2.0 * (c - np_), atol=1e-4, rtol=1e-4)
    with pytest.raises(ConfigError, match="prompt_guidance must be"):
        SamplingConfig(prompt_guidance=float("nan"))


def test_text_dropout_hides_some_utterances_text_in_training_only():
    model = ARModel(config(dropout=0.0, text_dropout=0.999))
    phonemes, p_lens, codes, c_lens = batch()
    model.eval()
    read = model(phonemes, p_lens, codes, c_lens).logits
    model.train()
    hidden = model(phonemes, p_lens, codes, c_lens).logits
    changed = model(phonemes.roll(1, dims=1), p_lens, codes, c_lens).logits  # other text: nothing changes unseen
    assert not torch.allclose(hidden, read)
    torch.testing.assert_close(changed, hidden)


@pytest.mark.parametrize("group_size,ar_levels", LAYOUTS)
def test_step_by_step_decoding_yields_what_the_batch_gets_in_order(group_size, ar_levels):
    model = ARModel(config(group_size=group_size, ar_levels=ar_levels)).eval()
    phonemes, phoneme_lens, codes, _ = batch(seed=4, lengths=(30, 22), phoneme_lengths=(7, 5))
    args = ([phonemes[0], phonemes[1, :5]], [codes[0, :, :6], codes[1, :, :9]], [9, 4],
            [lambda logits, history, level: int(logits[:model.eos].argmax())] * 2)
    steps = list(model.decode_steps(*args))
    assert all(piece.shape[1] <= group_size for step in steps for piece in step)  # at most a group per step
    joined = [torch.cat([step[b] for step in steps], dim=1) for b in range(2)]
    assert [j.tolist() for j in joined] == [t.tolist() for t in model.generate_batch(*args)]
    assert [j.shape[1] for j in joined] == [9, 4]


@pytest.mark.parametrize("ar_levels", [1, 3])
def test_generation_stops_at_eos_or_at_the_cap(ar_levels):
    model = ARModel(config(ar_levels=ar_levels)).eval()
    phonemes, _, codes, _ = batch()
    never_eos = model.generate(phonemes[0], codes[0, :, :5], max_frames=17, choose=lambda logits, history, level: 1)
    assert never_eos.tolist() == [[1] * 17] * ar_levels
    at_once = model.generate(phonemes[0], codes[0, :, :5], max_frames=17, choose=lambda logits, history, level: model.eos)
    assert at_once.shape == (ar_levels, 0)
    offered = []
    model.generate(phonemes[0], codes[0, :, :5], max_frames=3,
                   choose=lambda logits, history, level: offered.append((level, logits[model.eos].item())) or 1)
    assert all((value == float("-inf")) == (level > 0) for level, value in offered)  # only level 1 may end


def test_nar_sees_prompt_and_lower_levels_only():
    model = NARModel(config()).eval()
    phonemes, p_lens, codes, c_lens = batch()
    prompt, prompt_lens, target, target_lens = split_prompt(codes, c_lens, max_prompt=8)
    level = torch.tensor([2, 2])

    def logits(prompt=prompt, target=target):
        return model.logits(phonemes, p_lens, prompt, prompt_lens, target, target_lens, level)

    base = logits()
    higher = target.clone()
    higher[:, 2:] = (higher[:, 2:] + 1) % V  # the level being predicted and those above
    torch.testing.assert_close(logits(target=higher), base)
    lower = target.clone()
    lower[:, 1] = (lower[:, 1] + 1) % V
    assert not torch.allclose(logits(target=lower), base)
    top_of_prompt = prompt.clone()
    top_of_prompt[:, K - 1] = (top_of_prompt[:, K - 1] + 1) % V  # all prompt levels are visible
    assert not torch.allclose(logits(prompt=top_of_prompt), base)


def test_nar_padding_never_leaks():
    model = NARModel(config()).eval()
    phonemes, p_lens, codes, c_lens = batch()
    prompt, prompt_lens, target, target_lens = split_prompt(codes, c_lens, max_prompt=8, generator=torch.Generator().manual_seed(1))
    level = torch.tensor([1, 3])
    batched = model.logits(phonemes, p_lens, prompt, prompt_lens, target, target_lens, level)
    b = 1
    alone = model.logits(phonemes[b:, :p_lens[b]], p_lens[b:], prompt[b:, :, :prompt_lens[b]], prompt_lens[b:],
                         target[b:, :, :target_lens[b]], target_lens[b:], level[b:])
    torch.testing.assert_close(batched[b, :target_lens[b]], alone[0], atol=1e-5, rtol=1e-5)


def test_nar_above_a_multi_level_ar_predicts_only_the_levels_above():
    model = NARModel(config(ar_levels=2)).eval()
    assert model.layers[0].norm1.gain_bias.num_embeddings == K - 2  # one adaptive norm per level it predicts
    phonemes, _, codes, _ = batch()
    out = model.generate(phonemes[0], codes[0, :, :6], codes[0, :2, 6:20])
    assert out.shape == (K, 14) and torch.equal(out[:2], codes[0, :2, 6:20])


def test_prompt_split_keeps_every_frame_once():
    _, _, codes, c_lens = batch()
    prompt, prompt_lens, target, target_lens = split_prompt(codes, c_lens, max_prompt=8)
    assert torch.equal(prompt_lens + target_lens, c_lens)
    assert (prompt_lens <= 8).all() and (prompt_lens <= c_lens // 2).all() and (prompt_lens >= 1).all()


def test_nar_output_projection_is_tied_to_the_level_embedding():
    model = NARModel(config())
    with torch.no_grad():
        model.level_embeddings[2].weight.zero_()
    phonemes, p_lens, codes, c_lens = batch()
    out = model.logits(phonemes, p_lens, codes[:, :, :6], torch.tensor([6, 6]), codes[:, :, 6:20], torch.tensor([14, 14]),
                       torch.tensor([2, 1]))
    assert (out[0] == 0).all() and not (out[1] == 0).all()


def _overfit(model: torch.nn.Module, step, steps: int = 300) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        loss = step()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


@pytest.mark.parametrize("ar_levels", [1, 3])
def test_ar_overfits_one_batch(ar_levels):
    model = ARModel(config(ar_levels=ar_levels)).train()
    phonemes, p_lens, codes, c_lens = batch(lengths=(16, 12))
    assert _overfit(model, lambda: model(phonemes, p_lens, codes, c_lens).loss) < 0.05


def test_nar_overfits_one_batch():
    model = NARModel(config()).train()
    phonemes, p_lens, codes, c_lens = batch(lengths=(16, 12))
    prompt, prompt_lens, target, target_lens = split_prompt(codes, c_lens, max_prompt=4)
    batches = [NARBatch(phonemes, p_lens, prompt, prompt_lens, target, target_lens, torch.tensor([level, level])) for level in range(1, K)]
    final = _overfit(model, lambda: sum(model(b).loss for b in batches) / len(batches), steps=300)
    assert final < 0.05


def test_presets_and_config_errors():
    paper = preset("paper")
    assert (paper.n_layers, paper.n_heads, paper.d_model, paper.d_ff, paper.dropout) == (12, 16, 1024, 4096, 0.1)
    with pytest.raises(ConfigError, match="divisible by n_heads"):
        ModelConfig(d_model=100, n_heads=16)
    with pytest.raises(ConfigError, match="ar_levels"):
        ModelConfig(n_codebooks=4, ar_levels=4)
    with pytest.raises(ConfigError, match="unknown model preset 'huge'"):
        preset("huge")
    with pytest.raises(ConfigError, match=r"unknown model config field\(s\) \['width'\]"):
        ModelConfig.from_dict({"width": 3})
    assert ModelConfig.from_dict(paper.to_dict()) == paper


def test_kv_cache_is_written_in_place_and_refuses_overflow():
    like = torch.zeros(1)
    cache = LayerCache(batch=1, n_heads=2, capacity=5, head_dim=3, like=like)
    first = torch.randn(1, 2, 3, 3)
    keys, values = cache.extend(first, -first)
    keys_again, _ = cache.extend(torch.ones(1, 2, 2, 3), torch.ones(1, 2, 2, 3))
    assert keys.data_ptr() == keys_again.data_ptr() and keys_again.shape[2] == 5
    torch.testing.assert_close(keys_again[:, :, :3], first)
    with pytest.raises(ValueError, match="holds 5 positions"):
        cache.extend(torch.ones(1, 2, 1, 3), torch.ones(1, 2, 1, 3))


def test_cpu_inference_linear_equals_the_plain_product_and_follows_every_weight_change():
    layer, x = Linear(16, 8), torch.randn(3, 5, 16)
    plain = lambda: torch.nn.functional.linear(x.to(layer.weight.dtype), layer.weight, layer.bias)  # noqa: E731
    with torch.no_grad():
        torch.testing.assert_close(layer(x), plain())
        assert (layer._packed is not None) == ONEDNN  # the packed path ran where oneDNN exists
        layer.weight.mul_(2)  # in place, as an optimiser step does
        torch.testing.assert_close(layer(x), plain())
    layer.load_state_dict({"weight": torch.zeros(8, 16), "bias": torch.ones(8)})
    with torch.no_grad():
        assert (layer(x) == 1).all()
    layer.weight.data = torch.randn(8, 16)  # what `.to(...)` does
    with torch.no_grad():
        torch.testing.assert_close(layer(x), plain())
        layer.to(torch.bfloat16)
        torch.testing.assert_close(layer(x.bfloat16()), plain(), atol=0.05, rtol=0.02)
    layer.float()
    with torch.no_grad():
        copied = copy.deepcopy(layer)  # the packed weight stays behind and is remade
        torch.testing.assert_close(copied(x), plain())
    y = layer(x)  # with autograd: the plain weight, so that gradients reach it
    y.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.shape == (8, 16)


def test_attention_weights_are_what_the_fused_kernel_applies():
    attention = Attention(32, 4, 0.0).eval()
    x = torch.randn(2, 9, 32)
    mask = torch.ones(9, 9, dtype=torch.bool).tril()[None, None].expand(2, 1, 9, 9)
    weights = attention.weights(x, mask)
    _, _, v = (t.view(2, 9, 4, -1).transpose(1, 2) for t in attention.qkv(x).split(32, dim=-1))
    expected = attention.out((weights @ v).transpose(1, 2).reshape(2, 9, 32))
    torch.testing.assert_close(attention(x, mask), expected, atol=1e-5, rtol=1e-4)
    assert torch.equal(weights[..., 0, 1:], torch.zeros_like(weights[..., 0, 1:]))  # nothing where the mask forbids


def test_alignment_scores_heads_by_how_monotonically_they_read_the_phonemes():
    assert spearman(np.arange(6), np.arange(6) * 3) == pytest.approx(1.0)
    assert spearman(np.arange(6), -np.arange(6)) == pytest.approx(-1.0)
    assert spearman(np.arange(6), np.zeros(6)) == 0.0
    assert spearman(np.arange(4), np.array([0, 0, 1, 1])) == pytest.approx(0.894, abs=1e-3)  # ties share their rank
    model = ARModel(config(group_size=2, ar_levels=3))
    phonemes, _, codes, _ = batch()
    maps = attention_maps(model, phonemes[0], codes[0, :, :20])
    assert maps.shape == (2, 2, 11, phonemes.shape[1])  # layers, heads, 20 frames + EOS in groups of 2, phonemes
    scores = head_monotonicity(model, [(phonemes[0], codes[0, :, :20], None), (phonemes[1], codes[1, :, :16], None)])
    assert scores.shape == (2, 2) and bool(((scores >= -1) & (scores <= 1)).all())


def _with_languages(model, seed: int = 1):
    """The model's languages given random (non-zero) embeddings, as training leaves them."""
    torch.nn.init.normal_(model.language_embedding.weight, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        model.language_embedding.weight[-1] = 0  # "no language" stays at zero
    return model


@pytest.mark.parametrize("stage", [ARModel, NARModel])
def test_a_stage_with_languages_starts_as_one_without_and_reads_each_phonemes_language(stage):
    """VALL-E X: a language embedding per phoneme, at zero at first (a warm start changes nothing)."""
    plain = stage(config(ar_levels=2)).eval()
    model = stage(config(ar_levels=2, languages=["en-us", "es", "fr-fr"])).eval()
    assert model.language_embedding.weight.shape == (4, model.config.d_model) and model.language_id("fr-fr") == 2
    model.load_state_dict(plain.state_dict(), strict=False)
    phonemes, p_lens, codes, c_lens = batch()
    spanish = torch.full_like(phonemes, model.language_id("es"))

    def logits(m, languages=None):
        if stage is ARModel:
            return m(phonemes, p_lens, codes, c_lens, languages).logits
        prompt, prompt_lens, target, target_lens = split_prompt(codes, c_lens, 6, torch.Generator().manual_seed(0))
        return m(NARBatch(phonemes, p_lens, prompt, prompt_lens, target, target_lens, torch.tensor([2, 3]), languages)).logits

    torch.testing.assert_close(logits(model, spanish), logits(plain))
    _with_languages(model)
    torch.testing.assert_close(logits(model), logits(plain))  # no language said: the zero row
    assert not torch.allclose(logits(model, spanish), logits(plain))
    prompt_in_french = spanish.clone()
    prompt_in_french[:, :3] = model.language_id("fr-fr")
    assert not torch.allclose(logits(model, prompt_in_french), logits(model, spanish))
    with pytest.raises(ConfigError, match="not trained on language 'de'; it knows en-us, es, fr-fr"):
        model.language_id("de")
    with pytest.raises(ConfigError, match="not trained on language 'es'; it knows none"):
        plain.language_id("es")
    with pytest.raises(ConfigError, match="distinct language codes"):
        config(languages=["es", "es"])


def test_kv_cache_and_batched_decoding_read_the_languages():
    model = _with_languages(ARModel(config(group_size=2, ar_levels=2, languages=["en-us", "es"]))).eval()
    phonemes, _, codes, _ = batch()
    sequence, prompt_len = codes[0, :, :20], 8
    languages = torch.tensor([0, 0, 0, 1, 1, 1, 1])  # the prompt's words in English, the text in Spanish
    seen = []

    def teacher(logits: torch.Tensor, history: list[int], level: int) -> int:
        seen.append(logits[:V].clone())
        return int(sequence[level, len(history)])

    model.generate(phonemes[0], sequence[:, :prompt_len], 20 - prompt_len, teacher, languages)
    full = model(phonemes[:1], torch.tensor([7]), sequence[None], torch.tensor([20]), languages[None]).logits
    full = in_depth_order(full)[0, :, :V]
    torch.testing.assert_close(torch.stack(seen), full[prompt_len * 2:prompt_len * 2 + len(seen)], atol=1e-5, rtol=1e-4)

    def greedy(logits: torch.Tensor, history: list[int], level: int) -> int:
        return int(logits[:model.eos].argmax())

    requests = [(phonemes[0], languages), (phonemes[1, :5], torch.zeros(5, dtype=torch.long))]
    together = model.generate_batch([p for p, _ in requests], [codes[0, :, :6], codes[1, :, :4]], [10, 10], [greedy] * 2,
                                    [lang for _, lang in requests])
    alone = [model.generate(p, prompt, 10, greedy, lang) for (p, lang), prompt in zip(requests, [codes[0, :, :6], codes[1, :, :4]])]
    assert [t.tolist() for t in together] == [a.tolist() for a in alone]


def staircase(lengths: tuple[int, ...], phoneme_lengths: tuple[int, ...]) -> torch.Tensor:
    """Alignments `[B, T]` that walk through each utterance's phonemes at an even pace."""
    alignment = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    for b, (t, p) in enumerate(zip(lengths, phoneme_lengths)):
        alignment[b, :t] = torch.arange(t) * p // t
    return alignment


def pointer_model(group_size: int = 2, ar_levels: int = 3) -> ARModel:
    model = ARModel(config(group_size=group_size, ar_levels=ar_levels, phoneme_pointer=True)).eval()
    torch.nn.init.normal_(model.pointer_projection.weight, std=0.5)  # it starts at zero: make the pointer matter
    return model


def test_a_phoneme_pointer_starts_ignored_then_tells_each_step_its_phoneme():
    plain = ARModel(config(group_size=2, ar_levels=3)).eval()
    pointed = ARModel(config(group_size=2, ar_levels=3, phoneme_pointer=True)).eval()
    pointed.load_state_dict(plain.state_dict(), strict=False)  # as a run warm-started from a stage without one
    phonemes, p_lens, codes, c_lens = batch()
    alignment = staircase((30, 22), (7, 5))
    torch.testing.assert_close(pointed(phonemes, p_lens, codes, c_lens, alignment=alignment).logits,
                               plain(phonemes, p_lens, codes, c_lens).logits)
    torch.nn.init.normal_(pointed.pointer_projection.weight, std=0.5)
    before = pointed(phonemes, p_lens, codes, c_lens, alignment=alignment).logits
    moved = alignment.clone()
    moved[0, 12:] = (moved[0, 12:] + 1).clamp(max=6)  # from the step that predicts group 6 on
    after = pointed(phonemes, p_lens, codes, c_lens, alignment=moved).logits
    torch.testing.assert_close(after[:, :6], before[:, :6])
    assert not torch.allclose(after[0, 6:], before[0, 6:])
    torch.testing.assert_close(after[1], before[1])
    with pytest.raises(ConfigError, match="valle data align"):
        pointed(phonemes, p_lens, codes, c_lens)
    with pytest.raises(ConfigError, match="phoneme_pointer is an option of the AR stage"):
        NARModel(config(phoneme_pointer=True))


def test_pointer_advances_are_learnt_from_the_alignment_and_a_drawn_prompt_is_not_told_its_phonemes():
    model = pointer_model(group_size=2)
    phonemes, p_lens, codes, c_lens = batch()
    alignment = staircase((30, 22), (7, 5))
    out = model(phonemes, p_lens, codes, c_lens, alignment=alignment)
    logits, advances = out.advances
    steps = alignment[:, ::2]  # each group's first frame
    assert logits.shape == (2, 16, 8)
    assert advances[0, :14].tolist() == (steps[0, 1:] - steps[0, :-1]).tolist()
    assert (advances[0, 14:] == IGNORE).all()  # no audio after group 15: nothing to move on to
    assert advances[1, :10].tolist() == (steps[1, 1:11] - steps[1, :10]).tolist() and (advances[1, 10:] == IGNORE).all()
    model.train()
    drawn = {}
    for seed in range(12):
        torch.manual_seed(seed)
        pointer, advances = model._training_pointer(alignment, c_lens, 16, torch.tensor([True, False]))
        assert (pointer[1] == NOT_SAID).all() and (advances[1] == IGNORE).all()  # an utterance trained without text
        prompt = int((pointer[0] == NOT_SAID).sum())
        assert (pointer[0, :prompt] == NOT_SAID).all() and (advances[0, :prompt] == IGNORE).all()
        assert prompt <= 7 and (prompt == 0 or steps[0, prompt] != steps[0, prompt - 1])  # ends where a phoneme starts
        drawn[prompt] = drawn.get(prompt, 0) + 1
    assert 0 in drawn and len(drawn) > 2


@pytest.mark.parametrize("group_size,ar_levels", LAYOUTS)
def test_a_pointer_stage_decodes_with_the_kv_cache_as_a_full_forward_told_the_same_phonemes(group_size, ar_levels):
    model = pointer_model(group_size, ar_levels)
    phonemes, _, codes, _ = batch()
    sequence, prompt_len, start = codes[0, :, :24], 8, 2
    moves = [1, 0, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]  # to the last phoneme, never past it
    told, seen = [start], []

    def teacher(logits: torch.Tensor, history: list[int], level: int) -> int:
        if level == ADVANCE:
            assert logits.shape == (8,) and history == []
            told.append(told[-1] + moves[len(told) - 1])
            return moves[len(told) - 2]
        seen.append(logits[:V].clone())
        return int(sequence[level, len(history)])

    new = model.generate(phonemes[0], sequence[:, :prompt_len], max_frames=24 - prompt_len, choose=teacher,
                         text_start=start)
    assert torch.equal(new, sequence[:ar_levels, prompt_len:])
    alignment = torch.full((1, 24), NOT_SAID)
    for j, phoneme in enumerate(told[:(24 - prompt_len) // group_size]):  # the target's groups, one step each
        alignment[0, prompt_len + j * group_size:prompt_len + (j + 1) * group_size] = phoneme
    full = model(phonemes[:1], torch.tensor([phonemes.shape[1]]), sequence[None], torch.tensor([24]),
                 alignment=alignment).logits
    full = in_depth_order(full)[0, :, :V]
    first = prompt_len * ar_levels
    torch.testing.assert_close(torch.stack(seen), full[first:first + len(seen)], atol=1e-5, rtol=1e-4)


def test_batched_pointer_decoding_gives_each_request_what_it_gets_alone():
    model = pointer_model()
    phonemes, phoneme_lens, codes, _ = batch(seed=3, lengths=(30, 22, 27), phoneme_lengths=(7, 5, 3))
    requests = [(phonemes[b, :phoneme_lens[b]], codes[b, :, :n], cap, s) for b, (n, cap, s) in
                enumerate([(9, 12, 3), (4, 20, 1), (7, 6, 0)])]
    samplers = lambda: [Sampler(SamplingConfig(), seed=b) for b in range(3)]  # noqa: E731
    together = model.generate_batch([r[0] for r in requests], [r[1] for r in requests], [r[2] for r in requests],
                                    samplers(), text_starts=[r[3] for r in requests])
    alone = [model.generate(p, prompt, cap, sampler, text_start=s) for (p, prompt, cap, s), sampler in zip(requests, samplers())]
    assert [t.tolist() for t in together] == [a.tolist() for a in alone]


def test_a_pointer_stage_overfits_its_codes_and_its_advances():
    model = ARModel(config(ar_levels=3, phoneme_pointer=True)).train()
    phonemes, p_lens, codes, c_lens = batch(lengths=(16, 12))
    alignment = staircase((16, 12), (7, 5))
    torch.manual_seed(0)
    assert _overfit(model, lambda: model(phonemes, p_lens, codes, c_lens, alignment=alignment).loss, steps=400) < 0.1
    model.eval()
    _, hits, n = model(phonemes, p_lens, codes, c_lens, alignment=alignment).advance_sums()
    assert hits == n > 0


def test_the_monotonic_path_through_noisy_attention_is_the_true_one():
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(0, 12, 1), rng.integers(1, 5, 12))
    truth = truth[truth != 5]  # phoneme 5 takes no frame: a step passes over it
    log_probs = np.log(torch.tensor(rng.normal(0, 1, (len(truth), 12)) + 4 * np.eye(12)[truth]).softmax(-1).numpy())
    assert monotonic_path(log_probs).tolist() == truth.tolist()
    path = monotonic_path(np.log(np.full((30, 12), 1 / 12)))  # no evidence: still a valid walk
    assert path[0] <= 1 and path[-1] >= 10 and (np.diff(path) >= 0).all() and (np.diff(path) <= 3).all()


def test_the_monotonic_path_gives_every_sounding_phoneme_a_step_and_passes_over_only_silent_ones():
    silent = np.array([False, True, False, False, True, True, False, False, True])  # e.g. h _ a t ˈ _ s o .
    log_probs = np.log(np.full((12, 9), 0.01))
    for step, phoneme in enumerate([0, 0, 2, 2, 2, 2, 2, 7, 7, 7, 7, 7]):  # attention never on 3 or 6
        log_probs[step, phoneme] = np.log(0.9)
    free = monotonic_path(log_probs)
    assert 3 not in free and 6 not in free  # attention alone passes over sounding phonemes
    path = monotonic_path(log_probs, silent=silent)
    assert set(np.flatnonzero(~silent)) <= set(path.tolist())
    assert (np.diff(path) >= 0).all() and all(silent[j] for a, b in zip(path, path[1:]) for j in range(a + 1, b))
    assert path[0] == 0 and path[-1] >= 7
    short = monotonic_path(log_probs[:3], silent=silent)  # 3 steps for 5 sounding phonemes: any may be passed over
    assert (np.diff(short) >= 0).all() and (np.diff(short) <= 3).all()
    assert monotonic_path(log_probs, silent=np.ones(9, dtype=bool)).tolist() == free.tolist()
    for p in (1, 2):  # texts shorter than the longest move
        assert monotonic_path(np.zeros((4, p)), silent=np.zeros(p, dtype=bool)).tolist()[-1] == p - 1


@pytest.mark.parametrize("group_size", [1, 2])
def test_a_pointer_stage_ends_only_near_its_last_phoneme_and_once_it_moves_past_it(group_size):
    model = pointer_model(group_size)
    phonemes, _, codes, _ = batch()
    told = []

    def moving(eager_to_end: bool):
        def choose(logits: torch.Tensor, history: list[int], level: int) -> int:
            if level == ADVANCE:
                told.append(1)
                return 1
            if level == 0 and eager_to_end and logits[model.eos] > float("-inf"):
                return model.eos
            return int(logits[:V].argmax())
        return choose

    # phonemes 0..6, the pointer at 2 and one further each step: the end token is offered from phoneme 5 on
    new = model.generate(phonemes[0], codes[0, :, :8], max_frames=40, choose=moving(True), text_start=2)
    assert new.shape[1] == 3 * group_size and len(told) == 3
    told.clear()  # never choosing the end: it ends after the step at the last phoneme
    new = model.generate(phonemes[0], codes[0, :, :8], max_frames=40, choose=moving(False), text_start=2)
    assert new.shape[1] == 5 * group_size and len(told) == 5


def test_onset_weight_counts_the_frames_that_start_a_phoneme_that_many_times_in_the_loss():
    phonemes, p_lens, codes, c_lens = batch()
    alignment = staircase((30, 22), (7, 5))
    plain = pointer_model(group_size=2, ar_levels=2)
    weighted = ARModel(config(group_size=2, ar_levels=2, phoneme_pointer=True, onset_weight=3.0)).eval()
    weighted.load_state_dict(plain.state_dict())
    out = plain(phonemes, p_lens, codes, c_lens, alignment=alignment)
    losses = F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), out.targets.reshape(-1),
                             ignore_index=IGNORE, reduction="none").view(out.targets.shape[0], -1, 2)  # [B, frames, k]
    onsets = torch.zeros(losses.shape[:2], dtype=torch.bool)
    onsets[:, 1:30] = alignment[:, 1:] != alignment[:, :-1]
    onsets[1, 22:] = False  # padding of the shorter utterance: no target there
    valid = out.targets.reshape(losses.shape) != IGNORE
    weights = torch.where(onsets, 3.0, 1.0)[..., None].expand_as(losses) * valid
    expected = (losses * weights).sum() / weights.sum()
    advances = out.loss - F.cross_entropy(out.logits.reshape(-1, out.logits.shape[-1]), out.targets.reshape(-1),
                                          ignore_index=IGNORE)
    got = weighted(phonemes, p_lens, codes, c_lens, alignment=alignment).loss - advances  # the advances are not weighted
    assert onsets.sum() > 5 and not torch.allclose(expected, out.loss - advances)
    torch.testing.assert_close(got, expected)
    with pytest.raises(ConfigError, match="onset_weight must be > 0, and differ from 1 only with phoneme_pointer"):
        config(onset_weight=2.0)
    with pytest.raises(ConfigError, match="onset_weight must be > 0"):
        config(onset_weight=0.0, phoneme_pointer=True)
