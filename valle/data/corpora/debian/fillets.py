"""Fish Fillets NG: the game's voice-acted dialogue in Czech and Dutch, 22 kHz Ogg Vorbis.

Layout, as Debian installs it:
    ROOT/usr/share/games/fillets-ng/sound/<level>/<lang>/<dialog id>.ogg     fillets-ng-data-cs, -nl
    ROOT/usr/share/games/fillets-ng/script/<level>/[brief_|demo_]dialogs_<lang>.lua   fillets-ng-data
where each dialog is a pair of Lua calls
    dialogId("kuf-m-je", "font_small", "Oh no, not again...")
    dialogStr("Jé, už zase...")
giving the clip's id, the font of its character and the English original, then the line
as the language's actors spoke it. The font names the character: the two fish
(`font_small`, `font_big`) and the recurring ones (parrot, statue, vikings, ...) are each
one speaker per language. The plain colours (white, yellow, cyan, greys, ...) are worn by
different minor characters in different levels, so with those the level is part of the
speaker. Both fish at once (`font_both`) and dialogs without a font are skipped.
"""

import re
from pathlib import Path

from valle.data.corpora._common import clean_text
from valle.data.corpora.debian._common import Skips, installed, package_missing
from valle.data.manifest import Utterance
from valle.errors import CorpusError

GAME = Path("usr/share/games/fillets-ng")
LANGUAGES = {"cs": "cs", "nl": "nl"}
"""Languages with recorded speech in Debian -> espeak-ng code."""
PACKAGES = ("fillets-ng-data", *(f"fillets-ng-data-{lang}" for lang in LANGUAGES))
COLOURS = frozenset({"white", "yellow", "cyan", "lightgrey", "darkgrey", "green", "brown", "magenta"})
"""Fonts that name no one character: different levels give them to different ones."""

_STRING = r'"((?:[^"\\]|\\.)*)"'
_DIALOG = re.compile(rf"dialogId\(\s*{_STRING}\s*,\s*{_STRING}\s*,\s*{_STRING}\s*\)\s*dialogStr\(\s*{_STRING}\s*\)")
_ESCAPE = re.compile(r"\\(.)")


def read_fillets(root: Path, skips: Skips) -> list[Utterance]:
    """The voiced dialogs of every installed language, level by level."""
    scripts, sounds = installed(root, GAME / "script"), installed(root, GAME / "sound")
    languages = [lang for lang in LANGUAGES if any(next(sound.glob(f"*/{lang}/*.ogg"), None) for sound in sounds)]
    if not languages:
        raise package_missing("fillets", PACKAGES, root, f"{GAME}/sound/<level>/<cs|nl>/<dialog>.ogg")
    if not scripts:
        raise package_missing("fillets", PACKAGES, root, f"{GAME}/script/<level>/dialogs_<lang>.lua beside the voices")
    rows = []
    for lang in languages:
        dialogs = {(script.parent.name, key): value for base in scripts
                   for script in sorted(base.glob(f"*/*dialogs_{lang}.lua")) for key, value in _read_script(script).items()}
        for sound in sounds:
            for path in sorted(sound.glob(f"*/{lang}/*.ogg")):
                level = path.parent.parent.name
                rows.extend(_utterance(path, level, lang, dialogs.get((level, path.stem)), skips))
    return rows


def _utterance(path: Path, level: str, lang: str, dialog: tuple[str, str] | None, skips: Skips) -> list[Utterance]:
    """The clip's row, or none (counted) when its dialog is unknown or has no single speaker."""
    clip_id = f"{lang}_{level}_{path.stem}"
    if dialog is None:
        skips.add(f"without a dialog in script/<level>/dialogs_{lang}.lua", clip_id)
        return []
    font, text = dialog
    character = font.removeprefix("font_")
    if not character or character == "both":
        skips.add("spoken by both fish at once or by no named character", clip_id)
        return []
    if not text:
        skips.add("with an empty dialog line", clip_id)
        return []
    speaker = f"fillets-{lang}-{f'{level}-' if character in COLOURS else ''}{character}"
    return [Utterance(id=clip_id, audio=path, text=text, speaker=speaker, language=LANGUAGES[lang])]


def _read_script(path: Path) -> dict[str, tuple[str, str]]:
    """Dialog id -> (font, text) of one Lua dialog file."""
    try:
        source = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise CorpusError(f"cannot read {path}: {e}; reinstall fillets-ng-data") from None
    return {_unescape(m[1]): (_unescape(m[2]), clean_text(_unescape(m[4]))) for m in _DIALOG.finditer(source)}


def _unescape(text: str) -> str:
    r"""A Lua string literal's value: `\n` a space, any other escaped character itself."""
    return _ESCAPE.sub(lambda m: " " if m[1] == "n" else m[1], text)
