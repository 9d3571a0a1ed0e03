"""Intent templates: patterns from a YAML data file, answers without the model."""

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml


class TemplateFileError(ValueError):
    """The templates file is unreadable or malformed; the message says where."""


@dataclass(frozen=True)
class Intent:
    name: str
    patterns: tuple[re.Pattern, ...]
    answer: str


def load_intents(path: Path | None = None) -> list[Intent]:
    """Load intents from `path`, or from the built-in file."""
    source = path or resources.files("precache") / "data" / "templates.yaml"
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        return [_intent(entry) for entry in data["intents"]]
    except (OSError, yaml.YAMLError, KeyError, TypeError, re.error) as exc:
        raise TemplateFileError(f"templates file {source}: {exc}") from None


def korean_file_intents(path: Path | None = None) -> list[Intent]:
    """Load the intents of the Korean language file (precache.localized)."""
    from precache.localized import LanguageFileError, korean_file

    try:
        return [_intent(entry) for entry in korean_file(path).get("intents", [])]
    except (KeyError, TypeError, re.error) as exc:
        raise LanguageFileError(f"language file {path or 'precache/data/korean.yaml'}: {exc}") from None


def _intent(entry: dict) -> Intent:
    patterns = tuple(re.compile(p) for p in entry["patterns"])
    return Intent(name=str(entry["name"]), patterns=patterns, answer=str(entry["answer"]))


def match_intent(intents: list[Intent], normalized: str) -> Intent | None:
    """Return the first intent with a pattern matching the whole normalised question."""
    for intent in intents:
        if any(p.fullmatch(normalized) for p in intent.patterns):
            return intent
    return None
