"""The phoneme vocabulary: fixed ids, round trips, JSON, unknown tokens, coverage of G2P."""

import hashlib
import json
import logging
from pathlib import Path

import pytest

from valle.errors import ConfigError
from valle.text import PhonemeTokenizer, PhonemeVocab
from valle.text.vocab import PHONES, PHONES_ADDED_IN_2, VERSION

# Phonetically varied English: Harvard-style sentences, hard names and loan words, and
# templates full of numbers, money, dates and abbreviations for the normaliser.
SENTENCES = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.", "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.", "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.", "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.", "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.", "What joy there is in living!",
    "Why would anyone measure the azure of a beige genre, Zsa Zsa?",
    "Pack my box with five dozen liquor jugs.", "Sphinx of black quartz, judge my vow.",
    "The quick brown fox jumps over the lazy dog; how vexingly quick daft zebras jump!",
    "Nguyen, Tchaikovsky, Llewellyn and Siobhan ate croissants, jalapeños and crème brûlée.",
    "Schadenfreude, Zeitgeist and déjà vu are loan words; so are rendezvous and façade.",
    "Bach wrote fugues in Leipzig; Dvořák wrote symphonies in the New World.",
    "Worcestershire sauce, colonel, choir, yacht and queue defy spelling.",
    "The thermometer read minus forty; the hygienist's rhythm was unusual.",
    "Whither goeth thou, O wretched knight, through the murky moor?",
    "Ow! Hmm. Uh-huh. Psst! Shh. Brr, it's cold. Mmm, pizza.",
    "The OECD, NASA, FBI and UNESCO met at IKEA with the CEO of IBM.",
    "I'd've thought you'd've known, y'all, that it isn't ain't.",
    "Aaaargh, nooooo, yesss, hmmmm!",
    "Antidisestablishmentarianism and floccinaucinihilipilification are long words.",
    "Rural juror, red lorry yellow lorry, unique New York, toy boat.",
    "The sixth sick sheikh's sixth sheep's sick.",
    "Bridget's glimpsed orchestra thwarted twelfth-century strengths.",
]
SENTENCES += [
    f"On {d} {m} {y}, Dr. {name} paid ${d * 7}.{d:02d} for {d * 123:,} items, i.e. {d}% more, at {d % 12 + 1}:{d % 60:02d} pm."
    for d, (m, y, name) in enumerate(zip(
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
         "November", "December"] * 13,
        range(1890, 2040), ["Smith", "O'Brien", "Nakamura", "Øster", "García", "Wójcik", "Achebe", "Zhang"] * 20), start=1)
]
SENTENCES += [f"The {n}th of {n + 3} is {n / 8:.3f}, about {n * 1.5:.1f}°C; St. {w} St. was No. {n}." for n, w in
              enumerate(["Mary", "John", "Anne", "Luke", "James", "Peter", "Agnes", "Giles"] * 12, start=1)]


def test_special_tokens_have_fixed_ids() -> None:
    vocab = PhonemeVocab()
    assert vocab.encode(["<pad>", "<bos>", "<eos>", "<unk>", "_"]) == [0, 1, 2, 3, 4]
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert vocab.tokens[:14] == ("<pad>", "<bos>", "<eos>", "<unk>", "_", ".", ",", "?", "!", ";", ":", "—", "ˈ", "ˌ")


def test_versions_are_frozen_and_each_keeps_the_ids_of_the_last() -> None:
    """Ids are part of every trained model: the token list of a version never changes.
    If this fails, restore the list or raise VERSION (and add a fingerprint)."""
    first, current = PhonemeVocab(version="1"), PhonemeVocab()
    assert current.version == VERSION == "2"
    assert (len(first), len(current)) == (111, 142) and current.tokens[:111] == first.tokens
    assert list(PHONES) == sorted(set(PHONES)) and list(PHONES_ADDED_IN_2) == sorted(set(PHONES_ADDED_IN_2) - set(PHONES))
    fingerprints = [hashlib.sha256("\n".join(v.tokens).encode()).hexdigest() for v in (first, current)]
    assert fingerprints == ["69a75cbdf38dbef5fdbdefd70f9dcfcbd3886a5abe995eca8ea4de677f03f5ac",
                            hashlib.sha256("\n".join(first.tokens + PHONES_ADDED_IN_2).encode()).hexdigest()]
    with pytest.raises(ConfigError, match="version 9 is not one of 1, 2"):
        PhonemeVocab(version="9")


@pytest.mark.parametrize("language, text", [("fr-fr", "Le cœur a ses raisons que la raison ne connaît point."),
                                            ("es", "El perro de San Roque no tiene rabo."),
                                            ("ru", "Мороз и солнце, день чудесный."),
                                            ("cs", "Příliš žluťoučký kůň úpěl ďábelské ódy."),
                                            ("nl", "Het regent pijpenstelen in Utrecht.")])
def test_version_2_speaks_the_languages_of_the_human_corpus_without_unknown_phones(language, text) -> None:
    tokenizer = PhonemeTokenizer()
    tokens = tokenizer.phonemize(text, language)
    assert tokenizer.vocab.unk_id not in tokenizer(text, language), [t for t in tokens if t not in tokenizer.vocab.tokens]
    assert any(t in PHONES_ADDED_IN_2 for t in tokens)  # each needs a phone version 1 lacked


def test_encode_decode_round_trip() -> None:
    vocab = PhonemeVocab()
    tokens = "h ə l ˈ oʊ , _ w ˈ ɜː l d !".split()
    ids = vocab.encode(tokens)
    assert all(4 <= i < len(vocab) for i in ids) and len(set(ids)) == len(set(tokens))
    assert vocab.decode(ids) == tokens
    assert vocab.decode(range(len(vocab))) == list(vocab.tokens)


def test_unknown_token_is_unk_counted_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    vocab = PhonemeVocab()
    with caplog.at_level(logging.WARNING, logger="valle.text.vocab"):
        ids = vocab.encode(["k", "ʡ", "æ", "ʡ", "ʡ", "ɧ"])
    assert ids[0] != vocab.unk_id
    assert [i == vocab.unk_id for i in ids] == [False, True, False, True, True, True]
    assert vocab.unknown == {"ʡ": 3, "ɧ": 1}
    assert [r.getMessage().count("'ʡ'") for r in caplog.records] == [1, 0]


def test_decode_rejects_ids_outside() -> None:
    with pytest.raises(ValueError, match="id 142 is outside"):
        PhonemeVocab().decode([5, 142])


def test_save_load_identity(tmp_path: Path) -> None:
    vocab = PhonemeVocab()
    vocab.save(tmp_path / "vocab.json")
    data = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert data == {"version": "2", "tokens": list(vocab.tokens)}
    assert "ɜː" in (tmp_path / "vocab.json").read_text(encoding="utf-8")  # readable, not \u-escaped
    loaded = PhonemeVocab.load(tmp_path / "vocab.json")
    assert loaded == vocab and loaded.tokens == vocab.tokens and loaded.version == "2"
    assert PhonemeVocab.from_dict(vocab.to_dict()) == vocab


def test_a_vocabulary_is_read_by_itself_and_its_later_versions_only() -> None:
    first, second = PhonemeVocab(version="1"), PhonemeVocab(version="2")
    assert first.read_by(first) and first.read_by(second)  # version 2 only adds ids after version 1's
    assert not second.read_by(first)  # version 1 has no ids for the phones added in 2
    swapped = list(first.tokens)
    swapped[-2:] = swapped[:-3:-1]
    assert not first.read_by(PhonemeVocab(swapped, "1"))  # the same size, two ids naming other phones


def test_a_saved_vocabulary_keeps_its_own_ids(tmp_path: Path) -> None:
    """A model trained with another version decodes with its own list, not today's."""
    old = PhonemeVocab(["<pad>", "<bos>", "<eos>", "<unk>", "_", "k", "æ", "t"], version="0")
    old.save(tmp_path / "old.json")
    loaded = PhonemeVocab.load(tmp_path / "old.json")
    assert loaded.version == "0" and len(loaded) == 8 and loaded != PhonemeVocab()
    tokenizer = PhonemeTokenizer(loaded)
    assert tokenizer("cat") == [5, 3, 6, 7]  # the stress mark is unknown to version 0
    assert tokenizer.vocab.decode([5, 6, 7]) == ["k", "æ", "t"]


@pytest.mark.parametrize(("data", "message"), [
    ({"version": "1", "tokens": ["<bos>", "<pad>", "<eos>", "<unk>"]}, "must start with <pad>"),
    ({"version": "1", "tokens": ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b", "a"]}, "twice: a"),
    ({"tokens": ["<pad>", "<bos>", "<eos>", "<unk>"]}, "JSON object"),
    ({"version": "1", "tokens": "abc"}, "JSON object"),
    (["<pad>"], "JSON object"),
])
def test_malformed_vocabulary(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PhonemeVocab.from_dict(data)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.json does not exist"):
        PhonemeVocab.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.json is not valid JSON"):
        PhonemeVocab.load(tmp_path / "bad.json")


@pytest.mark.parametrize("language", ["en-us", "en-gb"])
def test_english_g2p_stays_inside_the_vocabulary(language: str) -> None:
    assert len(SENTENCES) >= 300
    tokenizer = PhonemeTokenizer()
    for sentence in SENTENCES:
        ids = tokenizer(sentence, language=language)
        assert tokenizer.vocab.unk_id not in ids, (sentence, tokenizer.vocab.unknown)
    assert not tokenizer.vocab.unknown


def test_the_vocabulary_says_which_tokens_may_take_no_time():
    vocab = PhonemeVocab()
    silent = {token for token, quiet in zip(vocab.tokens, vocab.silent()) if quiet}
    assert {"_", "ˈ", "ˌ", ".", ","} <= silent and not {"a", "t", "uː", "ʃ"} & silent
