"""What an asker gets in their own language without the model: the fallback and the intent templates.

English comes from the settings (FALLBACK_ANSWER, TEMPLATES_FILE); Korean from a data file,
precache/data/korean.yaml by default (KOREAN_FILE names another), editable without code.
"""

from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from precache.language import KOREAN, language_of


class LanguageFileError(ValueError):
    """The language file is unreadable or malformed; the message says where."""


@lru_cache(maxsize=8)
def korean_file(path: Path | None = None) -> dict:
    """Return the Korean file's contents: fallback_answer, no_model_answer, not_in_documents_answer (optional)
    and intents."""
    source = path or resources.files("precache") / "data" / "korean.yaml"
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        for key in ("fallback_answer", "no_model_answer"):
            if not isinstance(data.get(key), str) or not data[key].strip():
                raise KeyError(f"{key} must be a non-empty text")
        if not isinstance(data.get("intents", []), list):
            raise TypeError("intents must be a list")
        return data
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise LanguageFileError(f"language file {source}: {exc}") from None


def fallback_for(settings, question: str | None) -> str:
    """Return the fallback answer in the question's language (English when the question is unknown)."""
    return fallback_in(settings, language_of(question) if question else "en")


def fallback_in(settings, language: str) -> str:
    """Return the fallback answer in a language."""
    return korean_file(settings.korean_file)["fallback_answer"] if language == KOREAN else settings.fallback_answer


def no_model_answer(settings) -> str:
    """Return the Korean answer given where the model cannot answer in Korean."""
    return korean_file(settings.korean_file)["no_model_answer"]


def not_in_documents_answer(settings, question: str) -> str:
    """Return the answer to a question the tenant's documents do not cover, in the question's language."""
    if language_of(question) == KOREAN:
        data = korean_file(settings.korean_file)
        return data.get("not_in_documents_answer") or data["no_model_answer"]
    return settings.not_in_documents_answer


def generates(settings, language: str) -> bool:
    """Tell whether the model answers in a language (LLM_LANGUAGES)."""
    return language in {lang.strip() for lang in settings.llm_languages.split(",")}
