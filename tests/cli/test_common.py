import pytest

from cli import main


def test_bad_configuration_names_the_variable(runner, monkeypatch):
    monkeypatch.setenv("PRECACHE_WEB_PORT", "eighty")
    result = runner.invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1 and "PRECACHE_WEB_PORT" in result.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the test's own database is not used
@pytest.mark.parametrize("command", [["stats"], ["precompute"], ["admin", "review"], ["ask", "hello"]])
def test_commands_on_a_database_not_migrated_say_to_upgrade(runner, monkeypatch, tmp_path, command):
    monkeypatch.setenv("PRECACHE_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(main, command)
    assert result.exit_code == 1
    assert "the database has no schema yet: run `precache db upgrade`" in result.output


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_database_not_reachable_is_named_without_its_password(runner, monkeypatch):
    monkeypatch.setenv("PRECACHE_DATABASE_URL", "postgresql+psycopg://postgres:secret@127.0.0.1:1/none")
    result = runner.invoke(main, ["stats"])
    assert result.exit_code == 1 and "cannot reach the database" in result.output and "secret" not in result.output
