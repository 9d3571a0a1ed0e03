import pytest

from precache.config import ConfigError, load_settings


def test_defaults_work_on_one_machine(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.database_url == "sqlite:///var/precache.db"
    assert s.broker_url == s.redis_url
    assert s.llm_model == "smollm2"


def test_environment_prefix_and_dotenv(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PRECACHE_WEB_PORT=9001\n")
    monkeypatch.setenv("PRECACHE_FALLBACK_ANSWER", "Please wait.")
    s = load_settings()
    assert s.web_port == 9001
    assert s.fallback_answer == "Please wait."


def test_wrong_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("PRECACHE_LLM_BACKEND", "gpt-magic")
    with pytest.raises(ConfigError, match="PRECACHE_LLM_BACKEND"):
        load_settings()


def test_namespace_changes_with_model_and_prompt():
    a = load_settings(llm_model="a.gguf")
    assert a.namespace != load_settings(llm_model="b.gguf").namespace
    assert a.namespace != load_settings(llm_model="a.gguf", prompt_version="v2").namespace


def test_every_field_is_described():
    from precache.config import Settings

    assert all(field.description for field in Settings.model_fields.values())


def test_llm_languages_are_checked_at_start(monkeypatch):
    monkeypatch.setenv("PRECACHE_LLM_LANGUAGES", "en, ko")
    assert load_settings().llm_languages == "en, ko"
    monkeypatch.setenv("PRECACHE_LLM_LANGUAGES", "en,jp")
    with pytest.raises(ConfigError, match="PRECACHE_LLM_LANGUAGES"):
        load_settings()
