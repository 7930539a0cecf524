"""The frame stage: where each frame stands in its phoneme, codes from latents, padding, learning, durations."""

import math

import pytest
import torch

from valle.errors import ConfigError
from valle.model import FrameModel, Stage, TrainedOn, preset
from valle.model.frames import (
    DEFAULT_PITCH,
    MAX_POSITION,
    NEIGHBOURS,
    PACE_RANGE,
    PITCH_BINS,
    PromptMap,
    ReversedGradient,
    Taught,
    fit_latent_map,
    frame_positions,
    match_variance,
    path_of,
    pitch_bins,
    pitch_contour,
    pitch_level,
    quantize,
    voice_slices,
)

V, K, D, N_PHONEMES = 16, 4, 8, 12


def model(**overrides) -> FrameModel:
    """A tiny frame stage over codebooks whose levels shrink tenfold each: a latent names its codes exactly."""
    m = FrameModel(preset("tiny", n_phonemes=N_PHONEMES, codebook_size=V, n_codebooks=K, latent_dim=D, **overrides))
    scales = torch.tensor([10.0 ** -level for level in range(K)])[:, None, None]
    m.use_codebooks(torch.randn(K, V, D, generator=torch.Generator().manual_seed(1)) * scales)
    return m


def utterances(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(phonemes, durations, codes): each phoneme's frames carry codes that its identity and place in it decide."""
    g = torch.Generator().manual_seed(seed)
    table = torch.randint(0, V, (N_PHONEMES, 3, K), generator=g)  # per phoneme: its start, middle and end codes
    out = []
    for _ in range(n):
        phonemes = torch.randint(0, N_PHONEMES, (int(torch.randint(4, 8, (), generator=g)),), generator=g)
        durations = torch.randint(1, 6, (len(phonemes),), generator=g)
        path = path_of(durations)
        since, until = frame_positions(path[None], torch.tensor([len(path)]))
        place = torch.where(since[0] == 0, 0, torch.where(until[0] == 0, 2, 1))
        out.append((phonemes, durations, table[phonemes[path], place].T))
    return out


def collate(items):
    p_lens = torch.tensor([len(p) for p, _, _ in items])
    c_lens = torch.tensor([c.shape[1] for _, _, c in items])
    phonemes = torch.zeros(len(items), int(p_lens.max()), dtype=torch.long)
    codes = torch.zeros(len(items), K, int(c_lens.max()), dtype=torch.long)
    alignment = torch.zeros(len(items), int(c_lens.max()), dtype=torch.long)
    for b, (p, d, c) in enumerate(items):
        phonemes[b, :len(p)], codes[b, :, :c.shape[1]], alignment[b, :c.shape[1]] = p, c, path_of(d)
    return phonemes, p_lens, codes, c_lens, alignment


def test_each_frame_knows_how_far_into_its_phoneme_it_is_and_how_far_from_its_end():
    path = torch.tensor([[0, 0, 1, 1, 1, 2, 0, 0], [0, 1, 1, 2, 2, 2, 2, 3]])
    since, until = frame_positions(path, torch.tensor([6, 8]))
    assert since.tolist() == [[0, 1, 0, 1, 2, 0, 0, 0], [0, 0, 1, 0, 1, 2, 3, 0]]
    assert until.tolist() == [[1, 0, 2, 1, 0, 0, 0, 0], [0, 1, 0, 3, 2, 1, 0, 0]]  # padding: 0
    long = path_of(torch.tensor([2, MAX_POSITION + 5]))
    since, until = frame_positions(long[None], torch.tensor([len(long)]))
    assert since.max() == until.max() == MAX_POSITION - 1  # a long phoneme's middle frames share the last place
    assert path_of(torch.tensor([2, 0, 1])).tolist() == [0, 0, 2]  # a phoneme of no frames is skipped


def test_latents_quantise_back_to_their_codes():
    m = model()
    codes = torch.randint(0, V, (2, K, 9))
    assert torch.equal(quantize(m.latents(codes), m.codebooks).permute(1, 0, 2), codes)
    slices, lens, levels = voice_slices(codes, torch.tensor([9, 4]), 6, torch.Generator().manual_seed(0))
    assert lens.tolist() == [6, 4] and slices.shape == (2, K, 6) and levels is None
    assert torch.equal(slices[1, :, :4], codes[1, :, :4])  # a short utterance is its own whole prompt


@pytest.mark.parametrize("voice_attention", [False, True])
def test_padding_does_not_change_what_an_utterance_gets(voice_attention):
    m = model(voice_attention=voice_attention).eval()
    if voice_attention:  # as trained: its output is no longer zero
        torch.nn.init.normal_(m.voice_attention[0].out.weight, std=0.1)
    items = utterances(3)
    phonemes, p_lens, codes, c_lens, alignment = collate(items)
    prompt, prompt_lens = codes[:, :, :5], torch.tensor([5, 3, 4])
    together = m(phonemes, p_lens, codes, c_lens, alignment, prompt, prompt_lens)
    for b, item in enumerate(items):
        alone = m(*collate([item]), prompt[b:b + 1, :, :int(prompt_lens[b])], prompt_lens[b:b + 1])
        n, p = int(c_lens[b]), int(p_lens[b])
        torch.testing.assert_close(alone.latent[0], together.latent[b, :n])
        torch.testing.assert_close(alone.durations[0], together.durations[b, :p])


def test_under_bf16_autocast_the_losses_stay_float32_and_close_to_full_precision():
    """A GPU trains under bf16 autocast: the frame counts behind the duration loss must stay exact there."""
    torch.manual_seed(0)
    m = model(pitch=True).eval()
    phonemes, p_lens, codes, c_lens, alignment = collate(utterances(3))
    pitch = torch.full(codes[:, 0].shape, 150.0)
    args = (phonemes, p_lens, codes, c_lens, alignment, codes[:, :, :5], torch.full((3,), 5))
    full = m(*args, pitch=pitch, prompt_pitch=torch.full((3,), 7.2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = m(*args, pitch=pitch, prompt_pitch=torch.full((3,), 7.2))
    assert mixed.loss.dtype == torch.float32
    torch.testing.assert_close(mixed.duration_loss, full.duration_loss, rtol=0.05, atol=0.01)
    torch.testing.assert_close(mixed.loss, full.loss, rtol=0.05, atol=0.05)


def test_the_stage_learns_codes_and_durations_from_the_phonemes_and_renders_them():
    torch.manual_seed(0)
    m = model()
    items = utterances(8)
    phonemes, p_lens, codes, c_lens, alignment = collate(items)
    optimizer = torch.optim.AdamW(m.parameters(), lr=1e-2)
    first = None
    for _ in range(300):
        out = m(phonemes, p_lens, codes, c_lens, alignment, codes[:, :, :6], torch.full((8,), 6))
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        first = first if first is not None else out.loss.item()
    m.eval()
    hits = m.code_hits(m(phonemes, p_lens, codes, c_lens, alignment, codes[:, :, :6], torch.full((8,), 6)).latent,
                       codes, c_lens)
    assert out.loss.item() < first / 10
    assert hits[0][0] / hits[0][1] > 0.95 and hits[1][0] / hits[1][1] > 0.9  # the codes, quantised from its latents
    p, d, c = items[0]
    sounding = torch.ones(len(p), dtype=torch.bool)
    durations = m.durations(p, c[:, :6], sounding)
    assert (durations - d).abs().float().mean() < 0.5
    assert m.durations(p, c[:, :6], sounding, pace=100.0).tolist() == [1] * len(p)  # every phoneme still sounds
    rendered = m.render(p, path_of(d), c[:, :6])
    assert rendered.shape == c.shape and (rendered[0] == c[0]).float().mean() > 0.95


def test_the_code_loss_scores_a_latent_by_the_codes_the_quantiser_gives_it():
    m = model(code_loss=1.0, code_loss_levels=2)
    codes = torch.randint(0, V, (2, K, 9), generator=torch.Generator().manual_seed(2))
    valid = torch.ones(2, 9, dtype=torch.bool)
    valid[1, 6:] = False
    exact = m.latents(codes)
    assert m.code_cross_entropy(exact, codes, valid) < math.log(V) / 2  # the true codes: the nearest at each level
    # Moved halfway toward another level-1 codeword, a latent is no farther from the truth than one moved as far
    # elsewhere, yet only the first comes near to quantising to a wrong code.
    other = m.codebooks[0][(codes[:, 0] + 1) % V]
    toward = exact + 0.45 * (other - m.codebooks[0][codes[:, 0]])
    away = exact + torch.randn_like(exact) * (toward - exact).norm(dim=-1, keepdim=True) / D ** 0.5
    assert m.code_cross_entropy(toward, codes, valid) > m.code_cross_entropy(away, codes, valid)
    garbage = exact.clone()
    garbage[1, 6:] = 1e3  # padding frames do not count
    assert torch.isclose(m.code_cross_entropy(garbage, codes, valid), m.code_cross_entropy(exact, codes, valid))
    items = utterances(2)
    phonemes, p_lens, codes, c_lens, alignment = collate(items)
    out = m(phonemes, p_lens, codes, c_lens, alignment, codes[:, :, :4], torch.full((2,), 4))
    assert out.code_loss > 0
    torch.testing.assert_close(out.loss, out.latent_loss + out.duration_loss + out.code_loss)
    with pytest.raises(ConfigError, match="code_loss_levels"):
        preset("tiny", n_codebooks=K, code_loss_levels=K + 1)


def test_a_taught_utterance_learns_its_teachers_latents_and_durations_and_the_others_their_own():
    torch.manual_seed(0)
    student, teacher = model(code_loss=1.0, voice_attention=True), model()
    items = utterances(3)
    phonemes, p_lens, codes, c_lens, alignment = collate(items)
    prompt, prompt_lens = codes[:, :, :4], torch.full((3,), 4)
    rows = torch.tensor([True, False, True])
    taught = teacher.teach(phonemes, p_lens, c_lens, alignment, prompt, prompt_lens, rows)
    assert taught.latent.shape == (3, alignment.shape[1], D) and taught.durations.shape == phonemes.shape
    own = student(phonemes, p_lens, codes, c_lens, alignment, prompt, prompt_lens)
    nobody = Taught(taught.latent, taught.durations, torch.zeros(3, dtype=torch.bool))
    untaught = student(phonemes, p_lens, codes, c_lens, alignment, prompt, prompt_lens, taught=nobody)
    torch.testing.assert_close(untaught.loss, own.loss)  # rows left untaught learn their recordings, as before
    # Taught its own rendering of every utterance, a stage has nothing left to learn of it, and no codes to score.
    itself = Taught(own.latent.detach(), own.durations.detach(), torch.ones(3, dtype=torch.bool))
    mirrored = student(phonemes, p_lens, codes, c_lens, alignment, prompt, prompt_lens, taught=itself)
    assert mirrored.latent_loss.item() < 1e-6 and mirrored.duration_loss.item() < 1e-6 and mirrored.code_loss == 0
    # Taught its rendering of two of them, it learns the third's recording alone: the taught rows cost nothing.
    partly = Taught(own.latent.detach(), own.durations.detach(), rows)
    alone = student(phonemes[1:2], p_lens[1:2], codes[1:2], c_lens[1:2], alignment[1:2], prompt[1:2], prompt_lens[1:2])
    mixed = student(phonemes, p_lens, codes, c_lens, alignment, prompt, prompt_lens, taught=partly)
    frames = c_lens.sum() * D
    torch.testing.assert_close(mixed.latent_loss * frames, alone.latent_loss * c_lens[1] * D)
    torch.testing.assert_close(mixed.code_loss, alone.code_loss)
    # And a teacher's rendering is what it renders at the true alignment, its durations what it predicts.
    rendered = teacher(phonemes, p_lens, codes, c_lens, alignment, prompt, prompt_lens)
    torch.testing.assert_close(taught.latent, rendered.latent)
    torch.testing.assert_close(taught.durations, rendered.durations)


def test_voice_attention_starts_as_the_stage_without_it():
    plain, attending = model(), model(voice_attention=True)
    attending.load_state_dict(plain.state_dict(), strict=False)  # what `init` copies: the rest starts fresh
    assert len(attending.voice_attention) == 1  # tiny: 2 frame layers, one attention after the second
    phonemes, p_lens, codes, c_lens, alignment = collate(utterances(2))
    args = phonemes, p_lens, codes, c_lens, alignment, codes[:, :, :4], torch.tensor([4, 4])
    torch.testing.assert_close(attending(*args).latent, plain(*args).latent)


def test_a_reversed_gradient_passes_values_and_turns_the_gradient_back():
    x = torch.randn(3, 4, requires_grad=True)
    weight = torch.randn(3, 4)
    y = ReversedGradient.apply(x)
    (y * weight).sum().backward()
    assert torch.equal(y, x) and torch.equal(x.grad, -weight)


def test_the_accent_adversary_learns_to_name_accents_while_the_voice_path_learns_to_hide_them():
    m = model(voice_attention=True, accents=("en-029", "en-us"), accent_adversary=0.5)
    torch.nn.init.normal_(m.voice_attention[0].out.weight, std=0.1)  # trained attention reads something
    items = utterances(3)
    phonemes, p_lens, codes, c_lens, alignment = collate(items)
    args = phonemes, p_lens, codes, c_lens, alignment, codes[:, :, :4], torch.full((3,), 4)
    out = m(*args, accents=torch.tensor([0, -1, 1]))
    torch.testing.assert_close(out.loss, out.latent_loss + out.duration_loss + 0.5 * out.accent_loss)
    assert out.accent_loss > 0 and out.accent_hits[1] == int(c_lens[0] + c_lens[2])  # the unlabelled one not scored
    # Alone in its batch an utterance gets the same loss: padding and the unlabelled utterance do not count.
    alone = [m(*(t[[b]] for t in args), accents=torch.tensor([label])) for b, label in ((0, 0), (2, 1))]
    frames = [int(c_lens[0]), int(c_lens[2])]
    joint = sum(o.accent_loss * n for o, n in zip(alone, frames)) / sum(frames)
    torch.testing.assert_close(out.accent_loss, joint)
    # The classifier descends its loss; the voice path, behind the reversed gradient, climbs it.
    m.zero_grad()
    out.accent_loss.backward()
    classifier = m.accent_classifier[2].bias.grad.clone()
    voice = m.voice_output.weight.grad.clone()
    m.zero_grad()
    inputs, frames = m.frame_inputs(m.encode_text(phonemes, p_lens), alignment, c_lens)
    taken = m.frame_states(inputs, frames, m.encode_voice(codes[:, :, :4], torch.full((3,), 4)))[1]
    valid = torch.arange(alignment.shape[1])[None] < c_lens[:, None]
    labels = torch.tensor([0, -1, 1])[:, None].expand_as(valid)
    told = valid & (labels >= 0)
    logits = m.accent_classifier(torch.cat([taken[told], inputs[told]], -1))
    torch.nn.functional.cross_entropy(logits, labels[told]).backward()
    torch.testing.assert_close(m.accent_classifier[2].bias.grad, classifier)  # it reads the frames' sounds too
    torch.testing.assert_close(m.voice_output.weight.grad, -voice)
    assert m(*args, accents=torch.full((3,), -1)).accent_loss == 0  # no speaker's accent known
    assert m(*args).accent_loss == 0  # none given: synthesis and held-out scores
    with pytest.raises(ConfigError, match="accent_adversary"):
        preset("tiny", accent_adversary=0.5)  # no accents to tell apart
    with pytest.raises(ConfigError, match="accent_adversary"):
        preset("tiny", accents=("en-029", "en-us"))  # accents, but no weight


def test_pitch_is_told_in_steps_of_log_f0_and_a_prompt_by_its_median():
    f0 = torch.tensor([0.0, 50.0, 70.7, 100.0, 499.0, 800.0])
    assert pitch_bins(f0).tolist() == [0, 1, 10, 20, PITCH_BINS, PITCH_BINS]  # 0 unvoiced; an octave is 19.3 steps
    assert pitch_level(torch.tensor([0.0, 100.0, 200.0, 0.0, 400.0, 200.0, 200.0])) == pytest.approx(7.643856)  # 200 Hz
    assert pitch_level(torch.tensor([0.0, 0.0, 300.0])) == DEFAULT_PITCH  # too little voiced to measure
    codes = torch.zeros(2, K, 9, dtype=torch.long)
    pitch = torch.tensor([[100.0] * 9, [0.0, 0.0] + [400.0] * 7])
    _, _, levels = voice_slices(codes, torch.tensor([9, 9]), 9, pitch=pitch)
    assert levels.tolist() == pytest.approx([math.log2(100.0), math.log2(400.0)])


def pitched(n: int, seed: int = 0) -> list[tuple]:
    """`utterances` whose frames also have a pitch (each voice's register, half an octave up on even phonemes,
    unvoiced on every third) that decides their second level's code: only a stage told the pitch can learn it."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for phonemes, durations, codes in utterances(n, seed):
        register = float(2 ** (math.log2(100) + torch.rand((), generator=g) * math.log2(3)))
        spoken = phonemes[path_of(durations)]
        f0 = torch.where(spoken % 3 == 0, 0.0, register * torch.where(spoken % 2 == 0, 2 ** 0.5, 1.0))
        codes = codes.clone()
        codes[1] = pitch_bins(f0) % V
        out.append((phonemes, durations, codes, f0, math.log2(register)))
    return out


def test_a_pitch_contour_carries_log_f0_straight_through_unvoiced_frames_and_holds_it_at_the_ends():
    f0 = torch.tensor([[0.0, 0.0, 100.0, 0.0, 0.0, 800.0, 0.0], [0.0] * 7, [0.0, 0.0, 0.0, 200.0, 0.0, 0.0, 0.0]])
    contour = pitch_contour(f0)
    torch.testing.assert_close(contour[0], torch.tensor([100.0, 100.0, 100.0, 200.0, 400.0, 800.0, 800.0]))
    assert torch.equal(contour[1], f0[1])  # nothing voiced: nothing to carry
    torch.testing.assert_close(contour[2], torch.full((7,), 200.0))
    assert torch.equal(f0[0, :2], torch.zeros(2))  # its input is left as it was
    with pytest.raises(ConfigError, match="pitch_contour .* needs pitch"):
        model(pitch_contour=True)


@pytest.mark.parametrize("contour", [False, True], ids=["voicing", "contour"])
def test_a_stage_told_the_pitch_learns_what_it_decides_and_predicts_it_from_the_prompts_register(contour: bool):
    """Told only the contour, the stage learns from the phonemes which frames are unvoiced (every third
    phoneme in `pitched`); its pitch head predicts the voicing either way."""
    torch.manual_seed(0)
    m = model(pitch=True, pitch_contour=contour)
    items = pitched(8)
    phonemes, p_lens, codes, c_lens, alignment = collate([item[:3] for item in items])
    pitch = torch.zeros(codes.shape[0], codes.shape[2])
    for b, item in enumerate(items):
        pitch[b, :len(item[3])] = item[3]
    levels = torch.tensor([item[4] for item in items])
    args = phonemes, p_lens, codes, c_lens, alignment, codes[:, :, :6], torch.full((8,), 6), None, pitch, levels
    optimizer = torch.optim.AdamW(m.parameters(), lr=1e-2)
    for _ in range(300):
        out = m(*args)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
    m.eval()
    hits = m.code_hits(m(*args).latent, codes, c_lens)
    assert hits[1][0] / hits[1][1] > 0.95  # the level the pitch decides, told the true pitch
    with torch.no_grad():  # its own pitch, relative to the prompt's register
        x, valid = m.frame_inputs(m.encode_text(phonemes, p_lens), alignment, c_lens)
        voiced, relative = m.predict_pitch(x, valid, m.encode_voice(codes[:, :, :6], torch.full((8,), 6)))
    told = valid[..., 0] > 0
    assert ((voiced > 0) == (pitch > 0))[told].float().mean() > 0.95
    octaves = (relative + levels[:, None] - pitch.clamp(min=1).log2())[told & (pitch > 0)]
    assert octaves.abs().median() < 0.05  # within a step of PITCH_BINS

    def rendered(shift: float) -> float:
        """Share of frames whose pitch code is within a step of PITCH_BINS of the true one (codes are bins mod V)."""
        def near(a: torch.Tensor, b: torch.Tensor) -> float:
            step = (a - b) % V
            return float(((step <= 1) | (step >= V - 1)).float().mean())
        return sum(near(m.render(p, path_of(d), c[:, :6], prompt_pitch=level + shift)[1], c[1])
                   for p, d, c, _, level in items) / len(items)

    at_register = rendered(0.0)
    assert at_register > rendered(1.0) + 0.15  # spoken at the register it is told, not an octave above
    told_pitch = [float((m.render(p, path_of(d), c[:, :6], pitch=f0)[1] == c[1]).float().mean()) for p, d, c, f0, _ in items]
    assert sum(told_pitch) / len(told_pitch) > 0.95  # or at the pitch it is given, frame by frame
    with pytest.raises(ConfigError, match="valle data pitch"):
        m(*args[:8])


def test_variance_matching_gives_each_latent_dimension_the_prompts_spread_and_keeps_its_mean():
    g = torch.Generator().manual_seed(0)
    latent = torch.randn(40, D, generator=g) * 0.5 + 3.0  # an average's spread: too even
    reference = torch.randn(25, D, generator=g) * torch.linspace(0.5, 2.0, D)
    matched = match_variance(latent, reference)
    torch.testing.assert_close(matched.std(0, correction=0), reference.std(0, correction=0))
    torch.testing.assert_close(matched.mean(0), latent.mean(0))
    halfway = match_variance(latent, reference, 0.5).std(0, correction=0)
    geometric = (latent.std(0, correction=0) * reference.std(0, correction=0)).sqrt()
    torch.testing.assert_close(halfway, geometric)
    assert torch.equal(match_variance(latent, reference, 0.0), latent)
    one = torch.ones(1, D)
    assert torch.equal(match_variance(one, reference), one)  # a single frame has no spread to move


def test_voice_feedback_renders_again_past_the_prompts_voice_by_what_the_first_rendering_fell_short(monkeypatch):
    m = model().eval()
    p, d, c = utterances(1)[0]
    prompt = c[:, :6]
    with torch.no_grad():  # the stage's own reading of a rendering is its reading of the same codes as a prompt
        torch.testing.assert_close(m.voice_of(m.latents(prompt[None])), m.encode_voice(prompt[None], torch.tensor([6])).vector)
    calls = []
    original = FrameModel.predict_latents

    def spy(self, x, valid, voice, pitch=None):
        latent = original(self, x, valid, voice, pitch)
        calls.append((voice.vector, latent))
        return latent

    monkeypatch.setattr(FrameModel, "predict_latents", spy)
    once = m.render(p, path_of(d), prompt)
    assert len(calls) == 1 and torch.equal(quantize(calls[0][1][0], m.codebooks), once)
    calls.clear()
    again = m.render(p, path_of(d), prompt, feedback=0.5)
    (voice, first), (moved, second) = calls
    with torch.no_grad():
        shortfall = voice - m.voice_of(first)
    assert shortfall.abs().max() > 1e-3
    torch.testing.assert_close(moved, voice + 0.5 * shortfall)
    assert torch.equal(again, quantize(second[0], m.codebooks))  # the second rendering is the one spoken


def test_the_latent_map_recovers_an_affine_map_and_is_held_toward_the_identity_by_its_ridge():
    g = torch.Generator().manual_seed(0)
    rendered = torch.randn(300, D, generator=g)
    weight, bias = torch.eye(D) + 0.3 * torch.randn(D, D, generator=g), torch.randn(D, generator=g)
    real = rendered @ weight + bias
    fitted_weight, fitted_bias = fit_latent_map(rendered, real, ridge=1e-6)
    torch.testing.assert_close(fitted_weight, weight, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(fitted_bias, bias, atol=1e-3, rtol=1e-3)
    held_weight, held_bias = fit_latent_map(rendered, real, ridge=1e6)  # held hard: only the mean moves
    torch.testing.assert_close(held_weight, torch.eye(D), atol=1e-4, rtol=0)
    torch.testing.assert_close(held_bias, real.mean(0) - rendered.mean(0) @ held_weight)
    between = fit_latent_map(rendered, real, ridge=1.0)[0]
    assert (held_weight - torch.eye(D)).norm() < (between - torch.eye(D)).norm() < (fitted_weight - torch.eye(D)).norm()
    few = fit_latent_map(rendered[:3], real[:3], ridge=0.1)[0]  # fewer frames than dimensions: still one answer
    assert torch.isfinite(few).all()


def test_the_prompt_map_takes_the_stages_rendering_of_the_prompts_words_toward_the_prompt():
    m = model().eval()
    p, d, c = utterances(1, seed=3)[0]
    path = path_of(d)
    fitted = m.prompt_map(p, path, c, ridge=1e-3)  # the prompt is the utterance itself, at its true frames
    with torch.no_grad():
        _, text, voice = m._encode(p, c, None)
        own = m._latents(text, path, voice, None)
        real = m.latents(c[None])[0]
    assert ((fitted(own) - real) ** 2).mean() < 0.5 * ((own - real) ** 2).mean()
    torch.testing.assert_close(fitted.rendered, fitted(own))
    torch.testing.assert_close(fitted.real, real)
    identity = m.prompt_map(p, path, c, ridge=None)
    assert torch.equal(identity.weight, torch.eye(D)) and not identity.bias.any()
    torch.testing.assert_close(m.render(p, path, c, latent_map=identity), m.render(p, path, c))
    assert not torch.equal(m.render(p, path, c, latent_map=fitted), m.render(p, path, c))
    local = m.prompt_map(p, path, c, ridge=None, neighbours=1.0)  # each own frame's nearest rendering is its own
    assert ((local(own) - real) ** 2).mean() < ((own - real) ** 2).mean()
    with pytest.raises(ValueError, match="alignment has"):
        m.prompt_map(p, path[:-1], c)


def test_the_prompt_maps_neighbours_move_a_frame_by_the_residual_of_the_prompt_frames_rendered_nearest_it():
    g = torch.Generator().manual_seed(0)
    centres = 10 * torch.randn(3, D, generator=g)  # three sounds, far apart, NEIGHBOURS prompt frames of each
    rendered = centres.repeat_interleave(NEIGHBOURS, 0) + 0.01 * torch.randn(3 * NEIGHBOURS, D, generator=g)
    offsets = torch.randn(3, D, generator=g)  # how the prompt's voice says each sound, unlike the rendering
    real = rendered + offsets.repeat_interleave(NEIGHBOURS, 0)
    frames = centres[torch.tensor([2, 0, 0, 1])] + 0.01 * torch.randn(4, D, generator=g)
    identity = torch.eye(D), torch.zeros(D)
    torch.testing.assert_close(PromptMap(*identity, rendered, real)(frames), frames)  # none asked: the map alone
    for share in (0.5, 1.0):
        moved = PromptMap(*identity, rendered, real, neighbours=share)(frames)
        torch.testing.assert_close(moved, frames + share * offsets[torch.tensor([2, 0, 0, 1])])
    few = PromptMap(*identity, rendered[:2], real[:2], neighbours=1.0)(frames)  # fewer prompt frames than NEIGHBOURS
    torch.testing.assert_close(few, frames + offsets[0])
    weight, bias = 2 * torch.eye(D), torch.ones(D)  # the affine map comes first; the neighbours are sought after it
    torch.testing.assert_close(PromptMap(weight, bias, rendered, real, 1.0)((frames - bias) / 2),
                               frames + offsets[torch.tensor([2, 0, 0, 1])])


def test_the_prompts_pace_is_its_words_predicted_frames_against_its_own_within_bounds():
    m = model()
    with torch.no_grad():
        m.duration_head.weight.zero_()
        m.duration_head.bias.fill_(math.log(5.0))  # every phoneme four frames
    words, sounding = torch.arange(10), torch.ones(10, dtype=torch.bool)
    prompt = lambda frames: torch.zeros(K, frames, dtype=torch.long)  # noqa: E731
    assert m.prompt_pace(words, prompt(40), sounding) == pytest.approx(1.0)
    assert m.prompt_pace(words, prompt(80), sounding) == pytest.approx(0.5)  # said twice as slowly
    assert m.prompt_pace(words, prompt(25), sounding) == pytest.approx(1.6)
    assert m.prompt_pace(words, prompt(400), sounding) == PACE_RANGE[0]  # a wrong transcript is not trusted far
    assert m.prompt_pace(words, prompt(5), sounding) == PACE_RANGE[1]
    slow = m.generate(words, prompt(80), sounding, pace=m.prompt_pace(words, prompt(80), sounding))
    assert slow.shape[1] == 80  # the stage says the prompt's words in the prompt's time


def test_the_stage_saves_and_loads_with_its_codebooks(tmp_path):
    from valle.codec import CodecRecord
    from valle.text import PhonemeVocab

    m = model()
    record = CodecRecord(name="compact", sample_rate=16000, frame_rate=50.0, n_codebooks=K, codebook_size=V)
    m.save_pretrained(tmp_path / "frames", TrainedOn(PhonemeVocab(), record))
    loaded = Stage.from_pretrained(tmp_path / "frames")
    assert isinstance(loaded, FrameModel) and loaded.reads_alignment
    assert torch.equal(loaded.codebooks, m.codebooks) and torch.equal(loaded.latent_scale, m.latent_scale)
    with pytest.raises(ConfigError, match="configured for"):
        m.use_codebooks(torch.zeros(K, V, D + 1))
    with pytest.raises(ConfigError, match="kernel_size odd"):
        model(kernel_size=4)
    with pytest.raises(ConfigError, match="valle data align"):
        phonemes, p_lens, codes, c_lens, _ = collate(utterances(1))
        m(phonemes, p_lens, codes, c_lens, None, codes, c_lens)
