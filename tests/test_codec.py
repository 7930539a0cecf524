"""Codecs: the protocol for both codecs, the compact codec's parts, training and persistence."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, speechlike, tiny_encodec_folder

from valle.codec import Codec, load_codec
from valle.codec.compact import CompactCodec
from valle.codec.discriminators import Discriminators, PeriodDiscriminator, adversarial_loss, discriminator_loss, feature_loss
from valle.codec.losses import PhaseLoss, anti_wrapped
from valle.codec.rvq import ResidualVectorQuantizer, VectorQuantizer, kmeans
from valle.codec.spectral import STFT, LogMel, mel_filters, pad_to_hop
from valle.data.manifest import Utterance, write_manifest
from valle.errors import ConfigError
from valle.train.codec import CodecTrainConfig, phones, train_codec


@pytest.fixture(params=["compact", "encodec"])
def codec(request, tmp_path) -> Codec:
    if request.param == "compact":
        torch.manual_seed(0)
        model = CompactCodec(TINY)
        model.train()
        model(torch.randn(4, 16000) * 0.1)  # k-means initialisation of the codebooks
        return load_codec(model.save_pretrained(tmp_path / "compact"))
    return load_codec(tiny_encodec_folder(tmp_path / "encodec"))


def test_protocol_shapes_rates_and_round_trip(codec, tmp_path):
    assert isinstance(codec, Codec)
    wav = torch.from_numpy(np.stack([speechlike(1.0, codec.sample_rate, seed) for seed in (0, 1)]))
    codes = codec.encode(wav)
    assert codes.dtype == torch.int64 and codes.shape[:2] == (2, codec.n_codebooks)
    assert abs(codes.shape[2] - codec.frame_rate) <= 1  # one second of audio
    assert 0 <= int(codes.min()) and int(codes.max()) < codec.codebook_size
    decoded = codec.decode(codes)
    assert decoded.shape[0] == 2 and abs(decoded.shape[1] - wav.shape[1]) < codec.sample_rate / codec.frame_rate
    assert torch.equal(codec.encode(wav), codes)  # deterministic


def test_codebooks_are_the_vectors_the_decoder_sums(codec):
    codes = codec.encode(torch.from_numpy(speechlike(0.5, codec.sample_rate))[None])
    books = codec.codebooks()
    assert books.shape[:2] == (codec.n_codebooks, codec.codebook_size)
    summed = sum(books[level][codes[0, level]] for level in range(codec.n_codebooks))  # [T, D]
    if isinstance(codec, CompactCodec):
        latent = codec.quantizer.decode(codes)[0]
    else:  # transformers' EnCodec: levels first, then [B, D, T]
        latent = codec.model.quantizer.decode(codes.transpose(0, 1))[0].T
    assert torch.allclose(summed, latent, atol=1e-5)


def test_encodec_has_the_papers_token_layout(tmp_path):
    codec = load_codec(tiny_encodec_folder(tmp_path / "e"))
    assert (codec.sample_rate, codec.frame_rate, codec.n_codebooks, codec.codebook_size) == (24000, 75.0, 8, 1024)
    codes = codec.encode(torch.randn(1, 48000) * 0.1)
    assert codes.shape == (1, 8, 150)


def test_encodec_reloads_to_identical_codes(tmp_path):
    folder = tiny_encodec_folder(tmp_path / "e")
    wav = torch.from_numpy(speechlike(2.0, 24000))[None]
    assert torch.equal(load_codec(folder).encode(wav), load_codec(folder).encode(wav))


def test_encodec_without_weights_names_what_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch"))
    with pytest.raises(ConfigError, match=r"(?s)EnCodec weights not found.*empty-cache.*empty-torch.*"
                                          r"never downloads.*facebook/encodec_24khz"):
        load_codec("encodec")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text(json.dumps({"model_type": "encodec"}))
    with pytest.raises(ConfigError, match="EnCodec weights not found"):
        load_codec(tmp_path / "half")


def test_unknown_codec_names_the_choices(tmp_path):
    with pytest.raises(ConfigError, match="give one of compact, encodec"):
        load_codec("soundstream")
    (tmp_path / "config.json").write_text(json.dumps({"codec": "mystery"}))
    with pytest.raises(ConfigError, match="kind 'mystery'"):
        load_codec(tmp_path)


def test_compact_reload_gives_identical_codes_and_audio(tmp_path):
    torch.manual_seed(1)
    model = CompactCodec(TINY).train()
    model(torch.randn(2, 8000) * 0.1)
    model.eval()
    wav = torch.from_numpy(speechlike(1.0, 16000))[None]
    folder = model.save_pretrained(tmp_path / "m")
    again = CompactCodec.from_pretrained(folder)
    assert torch.equal(again.encode(wav), model.encode(wav))
    assert torch.allclose(again.decode(model.encode(wav)), model.decode(model.encode(wav)), atol=1e-6)
    assert not any(k.endswith("embed_sum") for k in json.loads(json.dumps(list(_safetensor_keys(folder)))))


def _safetensor_keys(folder: Path) -> list[str]:
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "pt") as f:
        return list(f.keys())


def test_compact_missing_or_mismatched_weights(tmp_path):
    with pytest.raises(ConfigError, match="config.json is missing"):
        CompactCodec.from_pretrained(tmp_path)
    folder = CompactCodec(TINY).save_pretrained(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "decoder_dim": 48}))
    with pytest.raises(ConfigError, match="do not match its config"):
        CompactCodec.from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({**config, "colour": "blue"}))
    with pytest.raises(ConfigError, match=r"unknown codec config field\(s\) \['colour'\]"):
        CompactCodec.from_pretrained(folder)


def test_bundled_codec_loads_offline_and_reconstructs_speech():
    codec = load_codec("compact")
    assert (codec.sample_rate, codec.frame_rate, codec.n_codebooks, codec.codebook_size) == (16000, 50.0, 8, 1024)
    from valle.data.synthetic.voices import design_voices, render

    voice = design_voices(1, 0, seed=11)[0]
    wav = torch.from_numpy(render(voice, "The bundled codec should say this clearly.", 16000))[None]
    wav = pad_to_hop(wav, 320)
    decoded = codec.decode(codec.encode(wav))
    mel = LogMel(16000, 1024, 256, 80)
    distance = (mel(decoded) - mel(wav)).abs().mean().item()
    with_one_level = (mel(codec.decode(codec.encode(wav)[:, :1])) - mel(wav)).abs().mean().item()
    other = torch.from_numpy(render(voice, "Something else entirely is spoken here now.", 16000))[None]
    unrelated = (mel(pad_to_hop(other, 320)[:, : wav.shape[1]]) - mel(wav[:, : other.shape[1]])).abs().mean().item()
    assert distance < 0.6 * unrelated
    assert distance < with_one_level  # more levels, more detail


# -- parts -------------------------------------------------------------------------------

def test_stft_inverse_is_exact_and_frames_match_hop():
    stft = STFT(1280, 320)
    wav = torch.randn(2, 320 * 30)
    spec = stft(wav)
    assert spec.shape == (2, 641, 30)
    assert torch.allclose(stft.inverse(spec), wav, atol=1e-5)


def test_mel_filters_are_ordered_triangles():
    filters = mel_filters(16000, 1024, 40)
    assert filters.shape == (40, 513) and (filters >= 0).all()
    peaks = filters.argmax(1)
    assert (peaks[1:] > peaks[:-1]).all()
    assert pad_to_hop(torch.zeros(1, 10), 320).shape[-1] == 320


def test_kmeans_finds_separated_clusters():
    torch.manual_seed(0)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0]])
    points = torch.cat([c + 0.1 * torch.randn(100, 2) for c in centres])
    found = kmeans(points, 3, iterations=20)
    assert torch.cdist(centres, found).min(1).values.max() < 0.5


def test_ema_codebook_follows_data_and_restarts_dead_codes():
    torch.manual_seed(0)
    vq = VectorQuantizer(dim=2, size=4, decay=0.5).train()
    data = torch.tensor([[1.0, 1.0], [-1.0, -1.0]]).repeat(50, 1) + 0.01 * torch.randn(100, 2)
    vq(data)  # k-means start
    vq.codebook[0] = torch.tensor([100.0, 100.0])  # an entry nothing maps to
    for _ in range(5):
        _, codes, loss = vq(data)
    assert vq.codebook.abs().max() < 5  # the far entry was restarted on data
    assert loss.item() < 0.01


def test_residual_levels_refine_and_dropout_uses_fewer_levels():
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(dim=8, n_levels=4, size=16, dropout=0.0).train()
    z = torch.randn(4, 50, 8)
    for _ in range(3):
        rvq(z)
    rvq.eval()
    codes = rvq.encode(z)
    errors = [(rvq.decode(codes[:, :k]) - z).pow(2).mean().item() for k in range(1, 5)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.5 * errors[0]
    rvq.dropout = 1.0
    rvq.train()
    assert {rvq(z)[1].shape[1] for _ in range(30)} - {4}


# -- training ----------------------------------------------------------------------------

@pytest.fixture
def manifest(tmp_path, write_wav) -> Path:
    texts = ["a cat sat", "the dog ran off", "we see it"]
    rows = [Utterance(f"u{i}", write_wav(f"a/u{i}.wav", speechlike(1.5, 16000, seed=i)), text, "s") for i, text in enumerate(texts)]
    write_manifest(rows, tmp_path / "m.jsonl")
    return tmp_path / "m.jsonl"


def test_training_lowers_the_loss(manifest, tmp_path):
    config = CodecTrainConfig(steps=40, batch_size=4, segment_frames=16, warmup_steps=5, log_every=5, learning_rate=2e-3)
    train_codec([manifest], tmp_path / "run", TINY, config, device="cpu")
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert losses[-1] < 0.8 * losses[0]
    assert load_codec(tmp_path / "run" / "model").n_codebooks == 4


def test_content_loss_teaches_the_first_level_the_phones(manifest, tmp_path):
    config = CodecTrainConfig(steps=40, batch_size=2, segment_frames=16, warmup_steps=5, log_every=5, learning_rate=2e-3,
                              content_weight=1.0, content_batch_size=3)
    train_codec([manifest], tmp_path / "run", TINY, config, device="cpu")
    content = [json.loads(line)["content"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert content[-1] < 0.7 * content[0]
    assert load_codec(tmp_path / "run" / "model").n_codebooks == 4  # the phone head is not part of the codec


def test_phones_are_the_tokens_that_take_time():
    assert phones(["h", "ə", "ˈ", "oʊ", "_", "ð", "ˌ", "ɛɹ", ",", "."]) == ["h", "ə", "oʊ", "ð", "ɛɹ"]


@pytest.mark.parametrize("options", [{}, {"content_weight": 0.5}, {"adversarial_weight": 1.0, "decoder_only": True}])
def test_interrupted_training_resumes_exactly(manifest, tmp_path, options):
    config = CodecTrainConfig(steps=6, batch_size=2, segment_frames=16, warmup_steps=2, log_every=1, checkpoint_every=3,
                              content_batch_size=2, **options)
    init = None
    if config.decoder_only:  # a trained codec to start from, as fine-tuning a decoder always does
        train_codec([manifest], tmp_path / "init", TINY, CodecTrainConfig(steps=2, batch_size=2, segment_frames=16),
                    device="cpu")
        init = tmp_path / "init" / "model"
    train_codec([manifest], tmp_path / "straight", TINY, config, init=init, device="cpu")
    half = CodecTrainConfig(**{**config.__dict__, "steps": 3})
    train_codec([manifest], tmp_path / "resumed", TINY, half, init=init, device="cpu")
    train_codec([manifest], tmp_path / "resumed", TINY, config, resume=True, init=init, device="cpu")

    def losses(run: str) -> list[float]:
        return [json.loads(line)["loss"] for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    assert losses("resumed") == losses("straight")
    a, b = (CompactCodec.from_pretrained(tmp_path / run / "model").state_dict() for run in ("straight", "resumed"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_without_checkpoint_is_an_error(manifest, tmp_path):
    with pytest.raises(ConfigError, match="--resume given but .*checkpoint.pt does not exist"):
        train_codec([manifest], tmp_path / "none", TINY, CodecTrainConfig(steps=1), resume=True, device="cpu")


# -- adversarial training of the decoder ---------------------------------------------------

def test_discriminators_judge_every_window_and_pass_gradients_back():
    torch.manual_seed(0)
    critic = Discriminators()
    wav = (torch.randn(2, 4000) * 0.1).requires_grad_(True)
    judgements = critic(wav)
    assert len(judgements) == 8  # five periods, three resolutions
    for scores, features in judgements:
        assert scores.shape[0] == 2 and scores.shape[1] > 1 and len(features) == 4
    adversarial_loss(judgements).backward()
    assert wav.grad is not None and wav.grad.abs().sum() > 0


def test_a_period_discriminator_sees_samples_one_period_apart_together():
    periodic = torch.sin(torch.arange(3000.0) * 2 * np.pi / 5)[None]  # period 5: every column is constant
    discriminator = PeriodDiscriminator(5)
    first = discriminator.convs[0]
    folded = torch.nn.functional.leaky_relu(first(periodic.view(1, 1, -1, 5)), 0.1)
    assert torch.allclose(discriminator(periodic)[1][0], folded)
    assert folded[..., 10:-10, :].std(dim=2).max() < 1e-3 * folded.abs().max()


def test_adversarial_losses_reward_what_each_side_wants():
    def judged(score: float) -> list:
        return [(torch.full((2, 5), score), [torch.full((2, 3), score)])]

    assert discriminator_loss(judged(1.0), judged(0.0)) == 0  # real called real, decoded called decoded
    assert discriminator_loss(judged(0.0), judged(1.0)) == 2
    assert adversarial_loss(judged(1.0)) == 0 and adversarial_loss(judged(0.0)) == 1
    assert feature_loss(judged(0.5), judged(0.5)) == 0 and feature_loss(judged(0.5), judged(1.0)) == 0.5


def test_decoder_only_training_keeps_every_code_and_learns_against_the_critic(manifest, tmp_path):
    train_codec([manifest], tmp_path / "init", TINY, CodecTrainConfig(steps=3, batch_size=2, segment_frames=16), device="cpu")
    config = CodecTrainConfig(steps=30, batch_size=2, segment_frames=16, warmup_steps=2, log_every=1, learning_rate=2e-3,
                              adversarial_weight=1.0, decoder_only=True)
    train_codec([manifest], tmp_path / "run", TINY, config, init=tmp_path / "init" / "model", device="cpu")
    before, after = (CompactCodec.from_pretrained(tmp_path / run / "model").state_dict() for run in ("init", "run"))
    decoder = [k for k in before if k.startswith("decoder.")]
    assert all(torch.equal(before[k], after[k]) for k in before if k not in decoder)  # encoder and codebooks
    assert not all(torch.equal(before[k], after[k]) for k in decoder)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"critic", "adversarial", "features"} <= set(records[0]) and records[0]["commitment"] == 0
    early, late = (np.mean([r["critic"] for r in part]) for part in (records[:5], records[-5:]))
    assert late < early  # the discriminators learn to tell decoded audio from real


def test_the_phase_loss_ignores_whole_turns_and_judges_phase_its_differences_and_only_where_there_is_sound():
    torch.testing.assert_close(anti_wrapped(torch.tensor([2 * np.pi, -4 * np.pi, 3 * np.pi, -0.5])),
                               torch.tensor([0.0, 0.0, np.pi, 0.5]))
    loss, wav = PhaseLoss(64, 16), torch.from_numpy(speechlike(0.1, 16000, seed=1))[None].float()
    assert loss(wav, wav) == 0
    # inverted: every phase off by half a turn, their differences across time and frequency unchanged
    torch.testing.assert_close(loss(-wav, wav), torch.tensor(np.pi / 3), atol=1e-4, rtol=0)
    assert 0 < loss(torch.roll(wav, 3, 1), wav) < loss(torch.randn_like(wav), wav)
    quiet = wav.clone()
    quiet[:, 800:] = 0  # where the target is silent its phase weighs nothing, whatever the prediction says there
    noisy = quiet.clone()
    noisy[:, 900:] = 1e-3 * torch.randn(1, 700)
    assert loss(noisy, quiet) < 0.05 * loss(torch.randn_like(wav), quiet)
    prediction = torch.randn_like(wav, requires_grad=True)
    loss(prediction, wav).backward()
    assert prediction.grad.abs().sum() > 0


def test_decoder_only_training_with_the_phase_loss_reports_it_and_keeps_the_codes(manifest, tmp_path):
    train_codec([manifest], tmp_path / "init", TINY, CodecTrainConfig(steps=3, batch_size=2, segment_frames=16), device="cpu")
    config = CodecTrainConfig(steps=4, batch_size=2, segment_frames=16, warmup_steps=1, log_every=1, phase_weight=0.5,
                              decoder_only=True)
    train_codec([manifest], tmp_path / "run", TINY, config, init=tmp_path / "init" / "model", device="cpu")
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(0 < r["phase"] <= np.pi for r in records)
    before, after = (CompactCodec.from_pretrained(tmp_path / run / "model").state_dict() for run in ("init", "run"))
    assert all(torch.equal(before[k], after[k]) for k in before if not k.startswith("decoder."))
    with pytest.raises(ConfigError, match="phase_weight"):
        CodecTrainConfig(phase_weight=-1)


def test_decoder_only_refuses_the_content_loss():
    with pytest.raises(ConfigError, match="decoder_only freezes"):
        CodecTrainConfig(decoder_only=True, content_weight=0.5)
