"""One folder convention for every trained thing: the codec, both stages and the whole model."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import TINY
from safetensors.torch import save_file

from valle.codec import CodecRecord
from valle.codec.compact import CompactCodec
from valle.errors import ConfigError
from valle.infer import VallE
from valle.model import ARModel, FrameModel, NARModel, Stage, TrainedOn, preset
from valle.pretrained import computes_bfloat16, weights_dtype
from valle.text import PhonemeVocab

PRETRAINED = Path(__file__).resolve().parents[1] / "valle" / "infer" / "pretrained"
BUNDLED = PRETRAINED / "paper"  # the AR and NAR stages of the paper's layout
CONFIG = preset("tiny", n_phonemes=len(PhonemeVocab()), n_codebooks=TINY.n_codebooks, codebook_size=TINY.codebook_size)
RECORD = CodecRecord("compact", 16000, 50.0, TINY.n_codebooks, TINY.codebook_size, "0" * 64)


def _codec() -> CompactCodec:
    torch.manual_seed(0)
    codec = CompactCodec(TINY).train()
    codec(torch.randn(2, 8000) * 0.1)  # codebooks and cluster sizes that are not the initial ones
    return codec.eval()


def _save(model: torch.nn.Module, folder: Path, dtype: torch.dtype) -> Path:
    if isinstance(model, Stage):
        return model.save_pretrained(folder, TrainedOn(PhonemeVocab(), RECORD), dtype)
    return model.save_pretrained(folder, dtype)


MODELS = {"ar": lambda: ARModel(CONFIG), "ar, two levels": lambda: ARModel(replace(CONFIG, ar_levels=2, group_size=2)),
          "nar": lambda: NARModel(CONFIG), "frames": lambda: FrameModel(CONFIG), "codec": _codec}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_a_saved_model_loads_back_as_it_was(tmp_path, name, dtype):
    model = MODELS[name]()
    folder = _save(model, tmp_path / name, dtype)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    again = type(model).from_pretrained(folder)
    assert type(again) is type(model) and again.config == model.config and not again.training
    for key, value in model.state_dict().items():
        if key.endswith("embed_sum"):  # not saved: the codec's loader makes it from the codebook and cluster sizes
            continue
        loaded = again.state_dict()[key]
        assert loaded.dtype == value.dtype  # a float16 file loads as float32
        assert torch.equal(loaded, value) if dtype == torch.float32 else torch.allclose(loaded, value, atol=1e-3, rtol=1e-3)
    if isinstance(model, Stage):
        assert again.trained_on == TrainedOn(PhonemeVocab(), RECORD)


@pytest.mark.parametrize("flags, native", [("fpu sse avx2 avx512f avx512_bf16 avx512_vnni", True),
                                            ("fpu sse amx_bf16 amx_tile", True),
                                            ("fpu sse avx2 avx512f avx512_vnni", False)])
def test_auto_weights_are_bfloat16_only_where_the_processor_computes_it(tmp_path, flags, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert computes_bfloat16("cpu", cpuinfo) is native
    assert not computes_bfloat16("cpu", tmp_path / "absent")  # no way to ask: float32, never wrong
    assert weights_dtype("auto") == (torch.bfloat16 if computes_bfloat16("cpu") else torch.float32)
    assert weights_dtype("bfloat16") == torch.bfloat16 and weights_dtype(torch.float16) == torch.float16
    with pytest.raises(ConfigError, match="float32, bfloat16, float16 or auto"):
        weights_dtype("int8")


def test_float16_halves_the_weights_file(tmp_path):
    model = ARModel(CONFIG)
    full, half = (_save(model, tmp_path / str(dtype), dtype) / "model.safetensors" for dtype in (torch.float32, torch.float16))
    assert half.stat().st_size < 0.6 * full.stat().st_size


def test_a_whole_model_round_trips_with_its_codec_record(model_dir, tmp_path):
    valle = VallE.from_pretrained(model_dir)
    again = VallE.from_pretrained(valle.save_pretrained(tmp_path / "copy", torch.float16))
    assert again.codec_record == valle.codec_record == CodecRecord.of(valle.codec, valle.codec_name)
    assert again.tokenizer.vocab == valle.tokenizer.vocab and again.codec_name == valle.codec_name
    for a, b in ((valle.ar, again.ar), (valle.nar, again.nar)):
        assert all(torch.allclose(x, y, atol=1e-3) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_the_bundled_folders_load_as_they_are_and_are_written_with_the_same_keys(tmp_path):
    ar, nar = Stage.from_pretrained(BUNDLED / "ar"), NARModel.from_pretrained(BUNDLED / "nar")
    assert isinstance(ar, ARModel) and ar.trained_on == nar.trained_on and ar.trained_on.codec.name == "compact"
    old = json.loads((BUNDLED / "ar" / "config.json").read_text())
    assert ar.trained_on.codec == CodecRecord.from_dict(old["codec"]) and ar.trained_on.codec.to_dict() == old["codec"]
    new = json.loads((ar.save_pretrained(tmp_path / "ar", ar.trained_on) / "config.json").read_text())
    assert list(new) == list(old) and list(new["codec"]) == list(old["codec"]) and new["vocab"] == old["vocab"]
    frames = Stage.from_pretrained(PRETRAINED / "default" / "frames")  # the default model: the frame stage
    old = json.loads((PRETRAINED / "default" / "frames" / "config.json").read_text())
    assert isinstance(frames, FrameModel) and frames.trained_on.codec == ar.trained_on.codec
    new = json.loads((frames.save_pretrained(tmp_path / "frames", frames.trained_on) / "config.json").read_text())
    assert list(new) == list(old) and new["vocab"] == old["vocab"]
    assert {key: new["model"][key] for key in old["model"]} == old["model"]  # fields added since keep their defaults
    codec = BUNDLED.parents[2] / "codec" / "pretrained" / "compact-16k"
    resaved = CompactCodec.from_pretrained(codec).save_pretrained(tmp_path / "codec", torch.float16)
    assert (resaved / "config.json").read_text() == (codec / "config.json").read_text()


def test_a_stage_folder_whose_codec_record_has_no_hash_still_loads(tmp_path):
    """The layout a model put together by hand was saved with: the codec's name and code layout alone."""
    model, folder = NARModel(CONFIG), tmp_path / "nar"
    folder.mkdir()
    save_file(model.state_dict(), folder / "model.safetensors", metadata={"format": "pt", "stage": "nar"})
    codec = {"name": "compact", "sample_rate": 16000, "frame_rate": 50.0, "n_codebooks": 4, "codebook_size": 32}
    (folder / "config.json").write_text(json.dumps({"stage": "nar", "model": CONFIG.to_dict(), "vocab": PhonemeVocab().to_dict(),
                                                    "codec": codec, "valle_version": "0.1.0"}))
    loaded = NARModel.from_pretrained(folder)
    assert loaded.trained_on.codec.weights_sha256 is None and loaded.trained_on.codec.to_dict() == codec
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", ["ar", "nar", "codec"])
@pytest.mark.parametrize("missing", ["config.json", "model.safetensors"])
def test_a_folder_with_a_missing_file_is_refused_clearly(tmp_path, name, missing):
    model = MODELS[name]()
    folder = _save(model, tmp_path / name, torch.float32)
    (folder / missing).unlink()
    holds = "compact codec" if name == "codec" else "trained stage"
    with pytest.raises(ConfigError, match=f"holds no {holds}: {missing} is missing"):
        type(model).from_pretrained(folder)


def test_a_folder_of_another_stage_or_size_is_refused_clearly(tmp_path):
    nar = _save(NARModel(CONFIG), tmp_path / "nar", torch.float32)
    with pytest.raises(ConfigError, match="names stage 'nar'; expected 'ar'"):
        ARModel.from_pretrained(nar)
    assert isinstance(Stage.from_pretrained(nar), NARModel)
    config = json.loads((nar / "config.json").read_text())
    (nar / "config.json").write_text(json.dumps({**config, "model": {**config["model"], "d_ff": 64}}))
    with pytest.raises(ConfigError, match="do not match its config.json"):
        NARModel.from_pretrained(nar)
    (nar / "config.json").write_text(json.dumps({**config, "stage": "both"}))
    with pytest.raises(ConfigError, match="names stage 'both'; expected 'ar', 'frames', 'nar'"):
        Stage.from_pretrained(nar)


def test_a_codec_record_names_the_codec_and_hashes_its_weights():
    codec = _codec()
    record = CodecRecord.of(codec, "folder")
    assert (record.sample_rate, record.frame_rate, record.n_codebooks, record.codebook_size) == (16000, 50.0, 4, 32)
    assert CodecRecord.from_dict(record.to_dict()) == record and "name" not in record.identity()
    assert CodecRecord.of(codec, "compact").identity() == record.identity()  # the same codec by another name
    with torch.no_grad():
        codec.quantizer.levels[0].codebook.add_(1)
    assert CodecRecord.of(codec, "folder").weights_sha256 != record.weights_sha256


def test_the_ar_continues_whole_groups_of_its_own_levels():
    ar = ARModel(replace(CONFIG, ar_levels=2, group_size=2))
    prompt = torch.arange(4 * 7).view(4, 7)
    assert torch.equal(ar.trim_prompt(prompt), prompt[:2, 1:])  # the oldest frame would not fill a group
