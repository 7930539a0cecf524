"""The package's imports follow the data flow of docs/architecture.md.

A module imports only modules of its own room, of earlier steps, or shared utilities.
Every import statement counts: at the top of a module, inside a function, and under
`TYPE_CHECKING` (none is exempt: a lazy import is still a dependency).
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "valle"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"

# Shared utilities, each importing only those before it; "__init__" is the package root (its version).
SHARED = ("errors", "__init__", "files", "config", "pretrained", "audio", "pitch", "asr", "speaker", "watermark")
# The steps of the data flow, in order: a room may import any room before it.
FLOW = ("text", "codec", "data", "model", "train", "infer", "eval", "serve", "cli")
ORDER = SHARED + FLOW


def _room(module: str) -> str:
    """`valle.infer.pipeline` -> "infer", `valle.audio` -> "audio", `valle` -> "__init__"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").is_file() or path.is_dir()


def _imported(source: str, package: str) -> set[tuple[int, str]]:
    """(line, module) of every valle module imported anywhere in `source`, a module of `package` (for relative imports)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {(node.lineno, alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            parent = ".".join(filter(None, (base, node.module)))
            # `from valle import audio` imports a module; `from valle import __version__` the package's root
            found |= {(node.lineno, f"{parent}.{alias.name}" if _is_module(f"{parent}.{alias.name}") else parent)
                      for alias in node.names}
    return {(line, name) for line, name in found if name == "valle" or name.startswith("valle.")}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_room_has_its_place_in_the_flow():
    rooms = {_room(_module_name(path)) for path in _modules()}
    assert not rooms - set(ORDER), f"rooms not placed in the data flow: {sorted(rooms - set(ORDER))}; add each to ORDER in " \
        "tests/test_architecture.py and describe it in docs/architecture.md"


def test_imports_follow_the_data_flow():
    upward = []
    for path in _modules():
        module = _module_name(path)
        room, package = _room(module), module if path.name == "__init__.py" else module.rpartition(".")[0]
        for line, name in sorted(_imported(path.read_text(), package)):
            target = _room(name)
            if ORDER.index(target) > ORDER.index(room):
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}: {room} comes before {target}")
    assert not upward, f"imports against the data flow {' < '.join(ORDER)} (docs/architecture.md):\n" + "\n".join(upward)


def test_the_architecture_document_names_every_room():
    text = ARCHITECTURE.read_text()
    missing = [room for room in ORDER if f"`valle/{room}" not in text]
    assert not missing, f"docs/architecture.md does not describe {missing}"


def test_every_kind_of_import_is_read():
    source = """
import valle.text, numpy
from valle import __version__, audio
from . import batching
from ..data.shards import TokenizedCorpus
if TYPE_CHECKING:
    from valle.infer import VallE
def f():
    from valle.cli import main
"""
    assert {name for _, name in _imported(source, "valle.train")} == {
        "valle.text", "valle", "valle.audio", "valle.train.batching", "valle.data.shards", "valle.infer", "valle.cli"}
