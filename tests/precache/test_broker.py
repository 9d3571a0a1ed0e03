"""What a Redis broker holds of the generation jobs (precache/broker.py): real messages on a real Redis."""

import json

import redis as redis_lib
from kombu.transport.redis import Channel

from precache import broker
from tests.integration.conftest import free_port
from tests.worker.test_generation import enqueue


def test_the_queued_generation_jobs_are_those_the_broker_holds(ctx, config):
    first, second = enqueue(ctx, "What is an API?"), enqueue(ctx, "Why is the sky blue?", kind="detailed")
    assert broker.held_job_ids(config["broker_url"]) == {first[0], second[0]}


def test_a_message_a_worker_took_and_did_not_acknowledge_is_still_held(ctx, config):
    job_id, _ = enqueue(ctx, "What is an API?")
    client = redis_lib.Redis.from_url(config["broker_url"])
    raw = client.rpop("quick")  # taken by a worker, as kombu's BRPOP does, and recorded as unacknowledged
    assert broker.held_job_ids(config["broker_url"]) == set()  # between the two: nowhere in Redis
    client.hset(Channel.unacked_key, "tag-1", json.dumps([json.loads(raw), "", "quick"]))
    assert broker.held_job_ids(config["broker_url"]) == {job_id}


def test_messages_of_other_tasks_and_unreadable_ones_are_not_jobs(ctx, config):
    job_id, _ = enqueue(ctx, "What is an API?")
    client = redis_lib.Redis.from_url(config["broker_url"])
    client.lpush("quick", json.dumps({"headers": {"task": "worker.tasks.prune"}, "body": "W10="}), b"not json")
    assert broker.held_job_ids(config["broker_url"]) == {job_id}


def test_only_a_redis_broker_is_read():
    assert broker.held_job_ids("amqp://guest@127.0.0.1:5672//") is None


def test_queue_depths_count_the_waiting_messages(config, redis_client):
    client = redis_lib.Redis.from_url(config["broker_url"])
    client.lpush("quick", b"a", b"b", b"c")
    client.lpush("detailed", b"d")
    assert broker.depths(config["broker_url"], ["quick", "detailed", "replies"]) == {
        "quick": 3, "detailed": 1, "replies": 0}


def test_queue_depths_of_a_broker_away_are_unknown_not_an_error():
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert broker.depths(url, ["quick", "detailed"]) == {"quick": None, "detailed": None}
