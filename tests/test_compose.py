"""compose.yaml runs the processes the tests run, with commands the real CLI accepts."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]


def test_services_are_the_designed_processes(services):
    assert set(services) == {"redis", "postgres", "migrate", "web", "worker-gpu-0", "worker-cpu", "beat", "flower",
                             "rabbitmq"}


def test_rabbitmq_is_the_broker_on_demand(services):
    assert services["rabbitmq"]["profiles"] == ["rabbitmq"]  # started only with --profile rabbitmq
    for name in ["web", "worker-gpu-0", "worker-cpu", "beat", "flower"]:
        assert services[name]["environment"]["PRECACHE_BROKER_URL"] == "${PRECACHE_BROKER_URL:-redis://redis:6379/1}"
        assert services[name]["depends_on"]["rabbitmq"] == {"condition": "service_healthy", "required": False}


@pytest.mark.parametrize("name", ["migrate", "web", "worker-gpu-0", "worker-cpu", "beat", "flower"])
def test_commands_are_real_cli_commands(services, name):
    command = services[name]["command"]
    assert command[0] == "precache"
    # --help after the real arguments makes click parse them without running the command.
    result = CliRunner().invoke(main, [*command[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_gpu_worker_reserves_its_gpu(services):
    worker = services["worker-gpu-0"]
    assert worker["command"][-2:] == ["--gpu", "0"]
    [device] = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["device_ids"] == ["0"]


def test_app_services_use_postgres_and_redis_and_wait_for_migrations(services):
    for name in ["web", "worker-gpu-0", "worker-cpu", "beat", "flower"]:
        env = services[name]["environment"]
        assert env["PRECACHE_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["PRECACHE_REDIS_URL"].startswith("redis://redis:")
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_dockerfile_builds_what_compose_runs():
    text = (ROOT / "Dockerfile").read_text()
    assert "pip install" in text and ".[llama,demo]" in text


def test_flower_is_published_on_loopback_only(services):
    # Flower as started asks for no login: published on every interface, anyone could watch and revoke tasks.
    assert services["flower"]["ports"] == ["127.0.0.1:5555:5555"]
