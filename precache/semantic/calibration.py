"""How sure the semantic tier must be, per language: its thresholds are not shared across embedders.

Cosine similarities mean different things under different models (multilingual-e5-small puts
unrelated Korean questions at 0.80-0.90, all-MiniLM-L6-v2 unrelated English ones at 0.1-0.5). English
asks use the SEMANTIC_* settings, calibrated on all-MiniLM-L6-v2 (docs/benchmarks.md). Korean asks use
the calibration of the Korean embedder shipped in precache/data/calibration.yaml, measured with
bench/korean.py; it names the model and the engine version it was measured with, and a Korean
embedder it does not list falls back to the English values, with a warning to calibrate it.
"""

import logging
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources

import yaml

from precache.language import KOREAN, language_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Calibration:
    """The cut-offs of one language's embedder."""

    threshold: float  # least confidence of a semantic hit
    min_similarity: float  # least cosine of a semantic hit
    join_similarity: float  # least cosine to join a pending question's job
    agreement: float  # least cosine at which two askers' phrasings agree (learning)
    measured_with: str = ""  # the embedder and engine version these were measured with
    relevance: tuple[float, float] | None = None  # question-answer cosines read as unrelated and on topic


def of_model(model: str) -> Calibration | None:
    """Return the shipped calibration of an embedder, or None when it has none."""
    found = shipped().get(model)
    if found is None:
        return None
    relevance = found.get("relevance")
    return Calibration(float(found["threshold"]), float(found["min_similarity"]), float(found["join_similarity"]),
                       float(found["agreement"]), str(found["measured_with"]),
                       (float(relevance[0]), float(relevance[1])) if relevance else None)


@lru_cache(maxsize=None)
def shipped() -> dict[str, dict]:
    """Return the shipped calibrations, by embedder."""
    text = (resources.files("precache") / "data" / "calibration.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text) or {}


def passage_relevance(model: str) -> float | None:
    """Return the least cosine of a question and a passage that answers it, under a shipped embedder; None if
    not calibrated."""
    found = shipped().get(model) or {}
    return float(found["passage_relevance"]) if "passage_relevance" in found else None


def english(settings) -> Calibration:
    return Calibration(settings.semantic_threshold, settings.semantic_min_similarity,
                       settings.semantic_join_similarity, settings.learn_agreement, settings.embedding_model)


@lru_cache(maxsize=None)
def _warn_uncalibrated(model: str) -> None:
    log.warning("no calibration for Korean embedder %s: Korean asks use the English thresholds; measure its own "
                "with bench/korean.py and set KOREAN_SEMANTIC_THRESHOLD", model)


def for_language(settings, language: str) -> Calibration:
    """Return the calibration of the embedder that embeds a language."""
    model = settings.korean_embedding_model
    if language != KOREAN or not model:
        return english(settings)
    base = of_model(model)
    if base is None:
        _warn_uncalibrated(model)
        base = english(settings)
    if settings.korean_semantic_threshold:
        base = replace(base, threshold=settings.korean_semantic_threshold)
    return base


def for_text(settings, text: str) -> Calibration:
    """Return the calibration that decides for a question, by its language."""
    return for_language(settings, language_of(text))
