"""Settings of the semantic tier, the quality gate and learning from feedback (precache/config/matching.py)."""

import pytest

from precache.config import ConfigError, Settings, load_settings
from precache.config.matching import FeedbackSettings, QualitySettings, SemanticSettings


def test_every_matching_setting_is_a_setting_of_the_whole():
    for group in (SemanticSettings, QualitySettings, FeedbackSettings):
        assert set(group.model_fields) <= set(Settings.model_fields), group.__name__


def test_the_semantic_tier_and_the_gate_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("PRECACHE_SEMANTIC_ENABLED", "false")
    monkeypatch.setenv("PRECACHE_QUALITY_THRESHOLD", "0.25")
    monkeypatch.setenv("PRECACHE_EMBEDDING_BACKEND", "onnx-int8")
    s = load_settings()
    assert (s.semantic_enabled, s.quality_threshold, s.embedding_backend) == (False, 0.25, "onnx-int8")


@pytest.mark.parametrize("field, value, variable", [
    ("embedding_backend", "tensorflow", "PRECACHE_EMBEDDING_BACKEND"),
    ("semantic_min_similarity", 1.5, "PRECACHE_SEMANTIC_MIN_SIMILARITY"),
    ("quality_threshold", -0.1, "PRECACHE_QUALITY_THRESHOLD"),
    ("quality_max_tries", 0, "PRECACHE_QUALITY_MAX_TRIES"),
    ("learn_gap", 0.9, "PRECACHE_LEARN_GAP"),
])
def test_a_value_out_of_bounds_is_refused_naming_its_variable(field, value, variable):
    with pytest.raises(ConfigError, match=variable):
        load_settings(**{field: value})


def test_the_admin_and_feedback_keys_are_never_shown():
    s = load_settings(api_key="admin-secret", feedback_key="feedback-secret")
    assert "admin-secret" not in repr(s) and "feedback-secret" not in repr(s)
    assert s.api_key.get_secret_value() == "admin-secret"
