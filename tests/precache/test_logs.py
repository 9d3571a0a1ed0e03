import logging
import sys

import pytest

from precache import logs
from precache.config import ConfigError, load_settings


def test_redact_hides_the_password_of_every_url():
    text = "db postgresql+psycopg://app:s3cr%40t@db:5432/x, cache redis://:hunter2@127.0.0.1:6379/0, plain redis://h/0"
    assert logs.redact(text) == ("db postgresql+psycopg://app:***@db:5432/x, cache redis://:***@127.0.0.1:6379/0, "
                                 "plain redis://h/0")


def test_log_records_carry_no_url_password():
    handler = logging.StreamHandler()
    logs.install(handler, json_lines=False)
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, "cannot reach %s", ("redis://:hunter2@h:1/0",),
                               None)
    assert handler.filter(record) and "hunter2" not in handler.format(record)
    try:
        raise ConnectionError("refused by postgresql://u:topsecret@h/db")
    except ConnectionError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    handler.filter(record)
    assert "topsecret" not in handler.format(record) and "***" in handler.format(record)


def test_a_config_error_never_shows_a_password():
    with pytest.raises(ConfigError) as info:
        load_settings(database_url="postgresql://u:topsecret@h/db", web_port="not a port")
    assert "PRECACHE_WEB_PORT" in str(info.value) and "topsecret" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_settings(redis_url="redis://:topsecret@h/0", generation_timeout_s=900, broker_visibility_timeout_s=60)
    assert "PRECACHE_BROKER_VISIBILITY_TIMEOUT_S" in str(info.value) and "topsecret" not in str(info.value)
