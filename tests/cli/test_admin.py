import json

from cli import main


def test_admin_review_approve_invalidate(runner, ctx):
    from tests.conftest import store_question

    qid, qhash = store_question(ctx, "Can I pay in instalments?")
    low = ctx.store.save_answer(qid, "pay pay pay", model="m", quality=0.1)
    listed = runner.invoke(main, ["admin", "review", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output.splitlines()[0])["answer_id"] == low["answer_id"]
    assert ctx.store.lookup(qhash) is None
    approved = runner.invoke(main, ["admin", "approve", str(low["answer_id"])])
    assert approved.exit_code == 0 and json.loads(approved.output)["review"] == "approved"
    assert ctx.store.lookup(qhash)[0]["answer_id"] == low["answer_id"]
    assert runner.invoke(main, ["admin", "invalidate", str(low["answer_id"])]).exit_code == 0
    assert ctx.store.lookup(qhash) is None
    missing = runner.invoke(main, ["admin", "pin", "987654"])
    assert missing.exit_code == 1 and "no answer 987654" in missing.output
    bad_tenant = runner.invoke(main, ["admin", "review", "--tenant", "bad tenant"])
    assert bad_tenant.exit_code == 2 and "--tenant" in bad_tenant.output


def test_admin_learned_lists_who_taught_a_phrasing_confirm_serves_it_and_unlearn_stops_serving_it(runner, ctx):
    from precache.feedback import record
    from tests.conftest import store_question
    from web.ladder import Ask

    target_id, qhash = store_question(ctx, "How do I reset my password?")
    answer = ctx.store.save_answer(target_id, "Open Settings, then Security.", curated=True, quality=1.0)
    ask = Ask.of("I am locked out of my account")
    assert record(ctx, ask, None, answer, True, {answer["answer_id"]: 0.9}, "asker:dana")["proposed"]
    assert ctx.store.lookup(ask.qhash) is None  # one asker: proposed, not served to others
    listed = runner.invoke(main, ["admin", "learned"])
    assert listed.exit_code == 0 and "waiting for more askers" in listed.output, listed.output
    listed = runner.invoke(main, ["admin", "learned", "--json"])
    row = json.loads(listed.output.splitlines()[0])
    assert (row["phrasing"], row["taught_by"], row["retracted_at"]) == ("I am locked out of my account", "asker:dana",
                                                                         None)
    confirmed = runner.invoke(main, ["admin", "confirm", str(row["id"])])
    assert confirmed.exit_code == 0 and json.loads(confirmed.output)["confirmed_at"], confirmed.output
    assert ctx.store.lookup(ask.qhash)[0]["answer_id"] == answer["answer_id"]
    assert "serving" in runner.invoke(main, ["admin", "learned"]).output
    done = runner.invoke(main, ["admin", "unlearn", str(row["id"])])
    assert done.exit_code == 0 and json.loads(done.output)["retracted_by"] == "admin (cli)"
    assert ctx.store.lookup(ask.qhash) is None
    assert "no learned phrasing" in runner.invoke(main, ["admin", "unlearn", "999"]).output
    assert "no learned phrasing" in runner.invoke(main, ["admin", "confirm", "999"]).output
