"""What every configuration dataclass shares: conversion to and from plain dicts (JSON)."""

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar, Self

from valle.errors import ConfigError
from valle.files import read_json


class DictConfig:
    """Mixin for dataclass configs; an unknown field is an error that lists the valid ones."""

    kind: ClassVar[str] = "config"  # how error messages name it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown {cls.kind} field(s) {sorted(unknown)}; valid: {sorted(known)}")
        return cls(**values)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """The config in the JSON file `path`; a missing or unreadable file is an error that names it."""
        values = read_json(path, cls.kind)
        if not isinstance(values, dict):
            raise ConfigError(f"{cls.kind} {path} must hold a JSON object of fields")
        return cls.from_dict(values)
