"""Meta's `encodec` checkpoints and lone `.safetensors` files read into transformers' EncodecModel.

The reference is Meta's own `encodec` package with random weights (nothing is
downloaded): its 24 kHz model is saved exactly the way its torch hub cache stores it,
then valle's codec must give the same codes and the same audio.
"""

import importlib.util
import re
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import speechlike, tiny_encodec_folder

from valle.codec import load_codec
from valle.codec.encodec import EncodecCodec
from valle.codec.encodec_convert import TORCH_HUB_FILE, torch_hub_checkpoint, transformers_key
from valle.errors import ConfigError

DECODE_ATOL = 1e-5  # measured difference: 0.0 (both run the same float ops); audio peaks ~0.1


def import_meta_encodec() -> types.ModuleType:
    """Meta's `encodec`, imported with a stand-in torchaudio that exists only during the import.

    The package imports torchaudio at module level but building and running the model
    never calls it. The stand-in leaves sys.modules afterwards, so nothing else (e.g.
    transformers' check for torchaudio) ever sees it.
    """
    if importlib.util.find_spec("encodec") is None:
        pytest.skip("Meta's encodec package is not installed (`pip install encodec`, part of valle[test])")
    names = ("torchaudio", "torchaudio.transforms", "torchaudio.functional")
    before = {name: sys.modules.get(name) for name in names}
    stubs = {name: types.ModuleType(name) for name in names}
    for name in names[1:]:
        setattr(stubs["torchaudio"], name.split(".")[1], stubs[name])
    sys.modules.update(stubs)
    try:
        import encodec
    finally:
        for name, module in before.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return encodec


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    """Meta's 24 kHz EnCodec with random weights at 6 kbps, and its state dict saved as the hub cache file."""
    encodec = import_meta_encodec()
    torch.manual_seed(0)
    model = encodec.EncodecModel.encodec_model_24khz(pretrained=False)
    # Its codebooks start as zeros (filled by k-means on the first training batch): fill
    # each level with jittered residuals of other speech-like signals, so that every
    # level of the test signals' codes uses many entries.
    with torch.no_grad():
        other = torch.from_numpy(np.stack([speechlike(2.0, 24000, seed) for seed in (10, 11, 12, 13)]))
        residual = model.encoder(other[:, None]).transpose(1, 2).reshape(-1, 128)
        for level in model.quantizer.vq.layers:
            book = level._codebook
            picks = residual[torch.randint(len(residual), (len(book.embed),))]
            book.embed.copy_(picks + 0.5 * residual.std(0) * torch.randn_like(picks))
            residual = residual - book.embed[torch.cdist(residual, book.embed).argmin(1)]
            book.embed_avg.normal_()
            book.cluster_size.uniform_()
            book.inited.fill_(1.0)
    model.set_target_bandwidth(6.0)
    model.eval()
    assert model.segment is None  # the 24 kHz model encodes the whole signal as one frame
    path = tmp_path_factory.mktemp("hub") / TORCH_HUB_FILE
    torch.save(model.state_dict(), path)
    return model, path


@pytest.fixture(scope="module")
def speech() -> torch.Tensor:
    return torch.from_numpy(np.stack([speechlike(1.0, 24000, seed) for seed in (0, 1)]))


@pytest.fixture(scope="module")
def expected(original, speech) -> tuple[torch.Tensor, torch.Tensor]:
    """Meta's codes `[B, 8, T]` at 6 kbps and its decoded audio `[B, S]`."""
    with torch.no_grad():
        frames = original[0].encode(speech[:, None])
        assert len(frames) == 1 and frames[0][1] is None  # one chunk, no loudness scale
        return frames[0][0], original[0].decode(frames)[:, 0]


def test_original_checkpoint_gives_the_original_codes_and_audio(original, speech, expected):
    model, path = original
    codes, audio = expected
    assert codes.shape == (2, 8, 75)
    assert all(len(level.unique()) > 60 for level in codes.transpose(0, 1))  # every level carries information

    for codec in (load_codec(path), EncodecCodec.from_pretrained(str(path))):
        assert (codec.sample_rate, codec.frame_rate, codec.n_codebooks, codec.codebook_size) == (24000, 75.0, 8, 1024)
        ours = codec.encode(speech)
        assert torch.equal(ours, codes)
        decoded = codec.decode(ours)
        assert decoded.shape == audio.shape
        assert (decoded - audio).abs().max().item() <= DECODE_ATOL

    # the quantizer's training statistics are carried over too
    stats = codec.model.quantizer.layers[3].codebook
    assert torch.equal(stats.embed_avg, model.quantizer.vq.layers[3]._codebook.embed_avg)
    assert torch.equal(stats.cluster_size, model.quantizer.vq.layers[3]._codebook.cluster_size)


def test_lone_safetensors_file_in_either_naming(original, speech, expected, tmp_path):
    from safetensors.torch import save_file

    path, codes = original[1], expected[0]
    state = {k: v.contiguous() for k, v in load_codec(path).model.state_dict().items()}
    save_file(state, tmp_path / "model.safetensors")
    # older transformers checkpoints (e.g. facebook/encodec_24khz) name weight norm weight_g / weight_v;
    # the quantizer's training statistics may be left out
    legacy = {k.replace(".parametrizations.weight.original0", ".weight_g")
               .replace(".parametrizations.weight.original1", ".weight_v"): v
              for k, v in state.items() if not k.endswith(("embed_avg", "cluster_size", "inited"))}
    assert legacy.keys() != state.keys()
    save_file(legacy, tmp_path / "legacy.safetensors")
    for name in ("model.safetensors", "legacy.safetensors"):
        assert torch.equal(load_codec(tmp_path / name).encode(speech), codes)


def test_key_mapping_covers_every_kind_of_entry():
    weight_norm = ".parametrizations.weight.original"
    assert transformers_key("encoder.model.3.conv.conv.weight_g") == "encoder.layers.3.conv" + weight_norm + "0"
    assert transformers_key("decoder.model.3.convtr.convtr.weight_v") == "decoder.layers.3.conv" + weight_norm + "1"
    assert transformers_key("decoder.model.4.block.1.conv.conv.bias") == "decoder.layers.4.block.1.conv.bias"
    assert transformers_key("encoder.model.1.shortcut.conv.conv.bias") == "encoder.layers.1.shortcut.conv.bias"
    assert transformers_key("encoder.model.13.lstm.weight_hh_l1") == "encoder.layers.13.lstm.weight_hh_l1"
    assert transformers_key("quantizer.vq.layers.31._codebook.embed") == "quantizer.layers.31.codebook.embed"
    assert transformers_key("quantizer.layers.31.codebook.embed") == "quantizer.layers.31.codebook.embed"


def test_default_search_finds_the_torch_hub_cache(original, speech, expected, tmp_path, monkeypatch):
    path = original[1]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf"))
    cached = tmp_path / "torch" / "hub" / "checkpoints" / TORCH_HUB_FILE
    assert torch_hub_checkpoint() == cached

    with pytest.raises(ConfigError, match=r"(?s)not found.*empty-hf.*" + re.escape(TORCH_HUB_FILE)):
        load_codec("encodec")

    cached.parent.mkdir(parents=True)
    shutil.copy(path, cached)
    assert torch.equal(load_codec("encodec").encode(speech), expected[0])

    # a Hugging Face snapshot, when there is one, comes first
    snapshot = tmp_path / "empty-hf" / "models--facebook--encodec_24khz" / "snapshots" / "0123abc"
    tiny_encodec_folder(snapshot)
    assert load_codec("encodec").model.config.hidden_size == 16


def test_unreadable_or_foreign_files_are_config_errors(tmp_path):
    corrupt = tmp_path / "broken" / TORCH_HUB_FILE
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"this is not a torch checkpoint")
    with pytest.raises(ConfigError, match=r"cannot read EnCodec weights from .*broken.*" + re.escape(TORCH_HUB_FILE)):
        load_codec(corrupt)
    (tmp_path / "junk.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    with pytest.raises(ConfigError, match="junk.safetensors"):
        load_codec(tmp_path / "junk.safetensors")

    torch.save({"encoder.model.0.conv.conv.bias": torch.zeros(32)}, tmp_path / "partial.th")
    with pytest.raises(ConfigError, match=r"partial\.th does not hold EnCodec 24 kHz weights: \d+ missing"):
        load_codec(tmp_path / "partial.th")
    torch.save({"model": "not tensors"}, tmp_path / "other.th")
    with pytest.raises(ConfigError, match="other.th is not an EnCodec state dict"):
        load_codec(tmp_path / "other.th")
    # a transformers file of another config (the tests' tiny EnCodec) has other shapes
    folder = tiny_encodec_folder(tmp_path / "tiny")
    with pytest.raises(ConfigError, match="of another shape"):
        load_codec(folder / "model.safetensors")
    with pytest.raises(ConfigError, match=r"(?s)not found.*missing\.th"):
        load_codec(tmp_path / "missing.th")
