"""Settings of storage, answers, limits and listeners (precache/config/serving.py), read through load_settings."""

import pytest

from precache.config import ConfigError, Settings, load_settings
from precache.config.serving import AnswerSettings, LimitSettings, ProcessSettings, StorageSettings


def test_every_serving_setting_is_a_setting_of_the_whole():
    for group in (StorageSettings, AnswerSettings, LimitSettings, ProcessSettings):
        assert set(group.model_fields) <= set(Settings.model_fields), group.__name__


def test_the_listeners_and_limits_are_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PRECACHE_WEB_PORT", "9100")
    monkeypatch.setenv("PRECACHE_MAX_QUESTION_CHARS", "300")
    monkeypatch.setenv("PRECACHE_LOG_JSON", "true")
    s = load_settings()
    assert (s.web_port, s.max_question_chars, s.log_json) == (9100, 300, True)


@pytest.mark.parametrize("field, value, variable", [
    ("web_port", 0, "PRECACHE_WEB_PORT"),
    ("web_port", 70000, "PRECACHE_WEB_PORT"),
    ("max_body_bytes", 100, "PRECACHE_MAX_BODY_BYTES"),
    ("job_ttl_s", 10, "PRECACHE_JOB_TTL_S"),
    ("log_level", "LOUD", "PRECACHE_LOG_LEVEL"),
])
def test_a_value_out_of_bounds_is_refused_naming_its_variable(field, value, variable):
    with pytest.raises(ConfigError, match=variable):
        load_settings(**{field: value})


def test_an_empty_database_url_is_a_sqlite_file_in_the_var_dir(tmp_path):
    s = load_settings(var_dir=tmp_path / "data", database_url="")
    assert s.database_url == f"sqlite:///{(tmp_path / 'data' / 'precache.db').as_posix()}"


@pytest.mark.parametrize("proxies", ["proxy.local", "10.0.0.1/8", "10.0.0.0/33", "10.0.0.1;10.0.0.2"])
def test_a_bad_trusted_proxies_value_fails_naming_its_variable(proxies):
    with pytest.raises(ConfigError, match="PRECACHE_TRUSTED_PROXIES"):
        load_settings(trusted_proxies=proxies)


def test_trusted_proxies_are_read_from_the_environment_as_a_comma_separated_list(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PRECACHE_TRUSTED_PROXIES", "10.0.0.0/24, 127.0.0.1,")
    assert [str(n) for n in load_settings().trusted_proxies] == ["10.0.0.0/24", "127.0.0.1/32"]
    monkeypatch.delenv("PRECACHE_TRUSTED_PROXIES")
    assert load_settings().trusted_proxies == ()
