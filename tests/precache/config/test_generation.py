"""Settings of the model, prompts, scheduled jobs and time limits (precache/config/generation.py)."""

import pytest

from precache.config import DEFAULT_MODEL, ConfigError, Settings, load_settings
from precache.config.generation import ModelSettings, ReliabilitySettings, ScheduleSettings


def test_every_generation_setting_is_a_setting_of_the_whole():
    for group in (ModelSettings, ScheduleSettings, ReliabilitySettings):
        assert set(group.model_fields) <= set(Settings.model_fields), group.__name__


def test_the_default_model_is_the_one_a_machine_without_settings_runs(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    assert load_settings().llm_model == DEFAULT_MODEL


@pytest.mark.parametrize("field, value, variable", [
    ("llm_quantization", "2bit", "PRECACHE_LLM_QUANTIZATION"),
    ("llm_max_batch", 0, "PRECACHE_LLM_MAX_BATCH"),
    ("llm_max_tokens_quick", 9000, "PRECACHE_LLM_MAX_TOKENS_QUICK"),
    ("prompt_version", "", "PRECACHE_PROMPT_VERSION"),
    ("generation_max_crashes", 0, "PRECACHE_GENERATION_MAX_CRASHES"),
    ("prune_interval_s", 1, "PRECACHE_PRUNE_INTERVAL_S"),
])
def test_a_value_out_of_bounds_is_refused_naming_its_variable(field, value, variable):
    with pytest.raises(ConfigError, match=variable):
        load_settings(**{field: value})


def test_a_generation_that_outlives_its_broker_message_is_refused():
    with pytest.raises(ConfigError, match="PRECACHE_BROKER_VISIBILITY_TIMEOUT_S .* PRECACHE_GENERATION_TIMEOUT_S"):
        load_settings(generation_timeout_s=100, broker_visibility_timeout_s=100)
    assert load_settings(generation_timeout_s=100, broker_visibility_timeout_s=101).generation_timeout_s == 100


def test_the_api_key_of_an_endpoint_is_never_shown():
    s = load_settings(llm_api_key="sk-secret-123")
    assert "sk-secret-123" not in repr(s) and s.llm_api_key.get_secret_value() == "sk-secret-123"
