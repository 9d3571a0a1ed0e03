from cli import main
from cli.processes import worker_argv


def test_gpu_worker_command_pins_the_device_and_runs_batches_on_one_pool_thread():
    argv, env = worker_argv("1", None, "info")
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert argv[argv.index("--hostname") + 1] == "gpu1@%h"
    assert argv[argv.index("--pool") + 1] == "threads" and argv[argv.index("--concurrency") + 1] == "1"
    assert argv[argv.index("--queues") + 1] == "quick,detailed,precompute"


def test_housekeeping_worker_uses_prefork_and_no_model():
    argv, env = worker_argv(None, "housekeeping", "info")
    assert argv[argv.index("--pool") + 1] == "prefork"
    assert argv[argv.index("--hostname") + 1] == "cpu@%h"


def test_unknown_queue_is_refused(runner):
    result = runner.invoke(main, ["worker", "--queues", "quick,fast"])
    assert result.exit_code == 2 and "unknown queue" in result.output


def test_web_runs_gevent_workers_by_default_and_gthread_on_request():
    from cli.processes import worker_class_args
    from precache.config import load_settings

    assert worker_class_args(load_settings()) == ["--worker-class", "gevent", "--worker-connections", "1000"]
    assert worker_class_args(load_settings(web_worker_class="gthread", web_threads=4)) == [
        "--worker-class", "gthread", "--threads", "4"]
