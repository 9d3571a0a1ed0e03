def test_unknown_job_is_404_with_a_hint(client):
    r = client.get("/v1/jobs/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404
    assert r.json["error"]["code"] == "job_not_found"
    assert "POST /v1/ask" in r.json["error"]["message"]


def test_overlong_job_id_is_404_not_500(client):
    assert client.get("/v1/jobs/" + "x" * 5000).status_code == 404


def test_ready_job_returns_the_answer(app, client):
    ctx = app.extensions["precache"]
    r = client.post("/v1/ask", json={"question": "Is there a student discount?"})
    job_id = r.json["job_id"]
    record = ctx.jobs.get(job_id)
    saved = ctx.store.save_answer(int(record["question_id"]), "Yes, 20 %.", model="m", quality=0.7)
    ctx.jobs.finish(job_id, ctx.ns, record["qhash"], answer_id=saved["answer_id"])
    body = client.get(f"/v1/jobs/{job_id}").json
    assert body["status"] == "ready" and body["answer"] == "Yes, 20 %." and body["source"] == "generated"


def test_failed_job_says_why_and_gives_the_fallback(app, client):
    ctx = app.extensions["precache"]
    job_id = client.post("/v1/ask", json={"question": "Will this fail?"}).json["job_id"]
    ctx.jobs.finish(job_id, ctx.ns, ctx.jobs.get(job_id)["qhash"], error="BackendError: model gone")
    body = client.get(f"/v1/jobs/{job_id}").json
    assert body["status"] == "failed" and "model gone" in body["error"] and body["source"] == "fallback"


def test_job_record_remnant_is_404_not_500(app, client):
    app.extensions["precache"].redis.hset("precache:job:partial", "question_id", "1")
    assert client.get("/v1/jobs/partial").status_code == 404
