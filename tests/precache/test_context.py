"""A process's clients (precache/context.py): built on first use, shared by tenants, each tenant's answers its own."""

from precache.config import load_settings
from precache.context import Context
from tests.conftest import store_question


def test_nothing_connects_before_it_is_used(tmp_path):
    ctx = Context(load_settings(database_url="postgresql+psycopg://postgres@127.0.0.1:1/none",
                                redis_url="redis://127.0.0.1:1/0", var_dir=tmp_path))
    assert ctx.ns and ctx.for_tenant("acme").ns != ctx.ns  # no server is asked for either
    ctx.close()  # nothing was opened, nothing to close


def test_no_tenant_is_the_context_itself_and_a_tenant_shares_its_connections(ctx):
    assert ctx.for_tenant(None) is ctx and ctx.for_tenant("") is ctx
    acme = ctx.for_tenant("acme")
    assert acme.tenant == "acme" and acme.redis is ctx.redis and acme.sessions is ctx.sessions
    assert acme.settings is ctx.settings
    assert acme.for_tenant("") is ctx and acme.for_tenant("globex").tenant == "globex"


def test_an_answer_stored_for_one_tenant_is_served_to_it_alone(ctx):
    acme, globex = ctx.for_tenant("acme"), ctx.for_tenant("globex")
    assert len({ctx.ns, acme.ns, globex.ns}) == 3
    question_id, qhash = store_question(acme, "Where is the office?")
    acme.store.save_answer(question_id, "Main Street 1.", curated=True, quality=1.0)
    answer, _ = acme.store.lookup(qhash)
    assert answer["answer"] == "Main Street 1."
    assert globex.store.lookup(qhash) is None and ctx.store.lookup(qhash) is None


def test_a_tenants_jobs_are_opened_in_its_namespace(ctx):
    acme = ctx.for_tenant("acme")
    question_id, qhash = store_question(acme, "Where is the office?")
    mine, _ = acme.jobs.enqueue(acme.ns, qhash, lambda: question_id)
    theirs, _ = ctx.jobs.enqueue(ctx.ns, qhash, lambda: question_id)
    assert mine != theirs  # the same question, one job per namespace
    assert acme.jobs.get(mine)["question_id"] == str(question_id)
