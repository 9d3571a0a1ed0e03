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


def _ready_job(app, client, question: str, tenant: str = "") -> tuple[str, int]:
    """Ask as `tenant`, finish its job with a good answer; return (job_id, answer_id)."""
    ctx = app.extensions["precache"].for_tenant(tenant)
    job_id = client.post("/v1/ask", json={"question": question} | ({"tenant": tenant} if tenant else {})).json["job_id"]
    record = ctx.jobs.get(job_id)
    saved = ctx.store.save_answer(int(record["question_id"]), f"{tenant or 'no tenant'}: yes.", model="m", quality=0.7)
    ctx.jobs.finish(job_id, ctx.ns, record["qhash"], answer_id=saved["answer_id"])
    return job_id, saved["answer_id"]


def test_a_tenants_job_is_seen_only_with_its_tenant(app, client):
    job_id, _ = _ready_job(app, client, "Do you ship to Norway?", tenant="acme")
    body = client.get(f"/v1/jobs/{job_id}?tenant=acme").json
    assert body["status"] == "ready" and body["answer"] == "acme: yes."
    unknown = client.get("/v1/jobs/00000000-0000-0000-0000-000000000000?tenant=globex").json
    for other in ("", "?tenant=globex"):  # the same 404 as an unknown job: an id says nothing across tenants
        r = client.get(f"/v1/jobs/{job_id}{other}")
        assert r.status_code == 404
        assert r.json["error"] == unknown["error"] | {"message": unknown["error"]["message"].replace(
            "00000000-0000-0000-0000-000000000000", job_id)}
    assert client.get(f"/v1/jobs/{job_id}?tenant=a%20b").status_code == 400


def test_a_job_without_a_tenant_is_not_seen_from_a_tenant(app, client):
    job_id, _ = _ready_job(app, client, "Do you ship to Iceland?")
    assert client.get(f"/v1/jobs/{job_id}").json["answer"] == "no tenant: yes."
    assert client.get(f"/v1/jobs/{job_id}?tenant=acme").status_code == 404


def test_a_ready_job_whose_answer_was_withdrawn_gives_the_fallback_not_the_answer(app, client):
    from precache import admin

    job_id, answer_id = _ready_job(app, client, "Is there a student discount?")
    admin.reject(app.extensions["precache"], answer_id)  # what POST /v1/admin/answers/<id>/invalidate does
    body = client.get(f"/v1/jobs/{job_id}").json
    assert body["status"] == "failed" and body["source"] == "fallback" and "ask again" in body["error"]
    assert body["answer"] == app.extensions["precache"].settings.fallback_answer and "yes" not in str(body)


def test_a_reply_job_is_not_a_generation_job(app, client):
    ctx = app.extensions["precache"]
    ctx.jobs._write("reply-1", status="ready", kind="reply:answer", text="a private reply")
    assert client.get("/v1/jobs/reply-1").status_code == 404


def test_a_tenants_asker_follows_the_poll_link_of_a_miss(client):
    pending = client.post("/v1/ask", json={"question": "Which regions do you ship to?", "tenant": "acme"}).json
    assert pending["status"] == "pending" and pending["poll"].endswith("?tenant=acme")
    polled = client.get(pending["poll"])
    assert polled.status_code == 200 and polled.json["status"] == "pending"
