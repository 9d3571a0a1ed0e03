"""The in-flight join (web/inflight.py): a paraphrase of a question still being generated joins its job."""

import pytest

pytestmark = pytest.mark.model


def test_a_paraphrase_of_a_pending_question_joins_its_job(app):
    client = app.test_client()
    first = client.post("/v1/ask", json={"question": "How do I export all my data to a CSV file?"}).json
    para = client.post("/v1/ask", json={"question": "How can I export all of my data to a CSV file?"}).json
    other = client.post("/v1/ask", json={"question": "How do I export all my data to a PDF file?"}).json
    assert para["job_id"] == first["job_id"]
    assert other["job_id"] != first["job_id"]


def test_a_finished_job_is_no_longer_joined(app):
    client, ctx = app.test_client(), app.extensions["precache"]
    first = client.post("/v1/ask", json={"question": "How do I delete my account for good?"}).json
    record = ctx.jobs.get(first["job_id"])
    ctx.jobs.finish(first["job_id"], ctx.ns, record["qhash"], error="test")
    para = client.post("/v1/ask", json={"question": "How can I delete my account for good?"}).json
    assert para["job_id"] != first["job_id"]


def test_an_entry_whose_job_was_lost_lapses_and_the_hash_expires(app):
    import json

    from precache import keys
    from web import inflight

    client, ctx = app.test_client(), app.extensions["precache"]
    first = client.post("/v1/ask", json={"question": "How do I merge two of my accounts?"}).json
    name = keys.inflight(ctx.ns)
    assert 0 < ctx.redis.ttl(name) <= inflight.MAX_AGE_S
    entry = json.loads(ctx.redis.hget(name, first["job_id"]))
    ctx.redis.hset(name, first["job_id"], json.dumps(entry | {"at": entry["at"] - inflight.MAX_AGE_S - 1}))
    para = client.post("/v1/ask", json={"question": "How can I merge two of my accounts?"}).json
    assert para["job_id"] != first["job_id"]  # not joined to a job a day old
    assert not ctx.redis.hexists(name, first["job_id"])
