"""The Celery application both sides share (precache/queueing.py): where each task goes, and what the broker keeps."""

from precache.config import load_settings
from precache.queueing import (ALL_QUEUES, GENERATE_DETAILED, GENERATE_QUICK, HOUSEKEEPING, PRECOMPUTE_FAQ, REPLY,
                               SCHEDULE, SWEEP, celery_config, make_celery)


def routed(app, task: str) -> str:
    return app.amqp.router.route({}, task)["queue"].name


def test_each_task_goes_to_the_queue_of_its_kind():
    app = make_celery(lambda: load_settings(broker_url="memory://"))
    assert routed(app, GENERATE_QUICK) == "quick" and routed(app, REPLY) == "quick"  # an asker waits on both
    assert routed(app, GENERATE_DETAILED) == "detailed"
    assert routed(app, PRECOMPUTE_FAQ) == "precompute"
    assert routed(app, SWEEP) == routed(app, "worker.tasks.prune_ask_log") == HOUSEKEEPING


def test_the_queues_are_declared_quick_first():
    config = celery_config(load_settings())
    assert [q.name for q in config["task_queues"]] == list(ALL_QUEUES) == ["quick", "detailed", "precompute",
                                                                         "housekeeping"]
    assert config["broker_transport_options"]["queue_order_strategy"] == "priority"


def test_a_message_outlives_a_batch_and_a_worker_holds_a_whole_batch_and_its_joiners():
    settings = load_settings(generation_timeout_s=30, broker_visibility_timeout_s=600, llm_max_batch=12)
    config = celery_config(settings)
    options = config["broker_transport_options"]
    assert options["visibility_timeout"] == 600 and options["unacked_restore_interval"] == 10
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 12 + 2  # and the messages that may join it (LLM_JOIN_ROOM)
    short = celery_config(load_settings(generation_timeout_s=1, broker_visibility_timeout_s=2))
    assert short["broker_transport_options"]["unacked_restore_interval"] == 1


def test_every_scheduled_job_runs_at_the_period_of_its_setting_and_never_stacks(tmp_path):
    settings = load_settings(refresh_interval_s=1234, var_dir=tmp_path)
    schedule = celery_config(settings)["beat_schedule"]
    assert {entry["task"] for entry in schedule.values()} == set(SCHEDULE)
    refresh = schedule["refresh-stale-answers"]
    assert refresh["schedule"] == 1234 and refresh["options"]["expires"] == 1234
    assert celery_config(settings)["beat_schedule_filename"] == str(tmp_path / "celerybeat-schedule")


def test_settings_are_read_when_celery_first_needs_them_not_before():
    read = []

    def settings():
        read.append(1)
        return load_settings(broker_url="memory://")

    app = make_celery(settings)
    assert read == []
    assert app.conf.broker_url == "memory://" and read == [1]
