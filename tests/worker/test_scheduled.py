"""Scheduled jobs against real SQL and Redis (tasks are sent to the real broker; no worker runs them here)."""

import threading
from datetime import timedelta

from sqlalchemy import func, select, update

from precache.models import Answer, AskLog, PredictedQuestion, Question, utcnow
from precache.normalize import normalize, question_hash
from precache.precompute import unanswered_faq
from precache.semantic.embedders import shared_embedder
from tests.conftest import store_question as _question
from worker import scheduled

PARAPHRASES = [
    "How can I change my delivery address?",
    "how do i change the delivery address",
    "Can I change my delivery address?",
    "I need to change my delivery address",
]



def _log_misses(ctx, texts, days_ago=0, asker=None, source="fallback"):
    with ctx.sessions() as session:
        for text in texts:
            n = normalize(text)
            session.add(AskLog(question=text, qhash=question_hash(n), namespace=ctx.store.namespace, asker=asker,
                               source=source, latency_ms=1.0, asked_at=utcnow() - timedelta(days=days_ago)))
        session.commit()


def _entries(ctx, tenant=""):
    """The questions predictive precompute made FAQ entries of for a tenant."""
    with ctx.sessions() as session:
        return session.scalars(select(Question).join(PredictedQuestion, PredictedQuestion.question_id == Question.id)
                               .where(PredictedQuestion.tenant == tenant, PredictedQuestion.canonical_id.is_(None))
                               .order_by(Question.id)).all()


def test_prune_deletes_only_rows_past_retention(ctx):
    _log_misses(ctx, ["old one", "old two"], days_ago=ctx.settings.ask_log_retention_days + 1)
    _log_misses(ctx, ["recent"], days_ago=1)
    assert scheduled.prune_ask_log(ctx, batch=1) == {"pruned": 2}
    with ctx.sessions() as session:
        assert session.scalars(select(AskLog.question)).all() == ["recent"]


def test_a_second_copy_of_a_job_does_nothing_while_the_first_runs(ctx):
    started, release, results = threading.Event(), threading.Event(), []

    def slow(name):
        with scheduled.exclusive(ctx, name, 60) as held:
            results.append(held)
            started.set()
            if held:
                release.wait(10)

    first = threading.Thread(target=slow, args=("refresh",))
    first.start()
    started.wait(10)
    slow("refresh")  # started while the first holds the lock
    release.set()
    first.join()
    assert sorted(results) == [False, True]
    with scheduled.exclusive(ctx, "refresh", 60) as held:  # released afterwards
        assert held


def test_refresh_queues_each_expired_question_once(ctx):
    qid, qhash = _question(ctx, "What are the opening hours?")
    ctx.store.save_answer(qid, "Nine to five.", model="m", quality=0.9)
    with ctx.sessions() as session:
        session.execute(update(Answer).values(expires_at=utcnow() - timedelta(hours=1)))
        session.commit()
    assert scheduled.refresh_stale(ctx) == {"refresh_queued": 1}
    assert scheduled.refresh_stale(ctx) == {"refresh_queued": 0}  # joined the pending refresh
    assert ctx.jobs.pending_job(ctx.ns, qhash, "refresh") is not None


def test_regenerate_queues_gated_questions_within_the_try_budget(ctx):
    qid, qhash = _question(ctx, "Is there a student discount?")
    ctx.store.save_answer(qid, "discount discount", model="m", quality=0.1)
    spent, _ = _question(ctx, "Do you sell gift cards?")
    for _ in range(ctx.settings.quality_max_tries):
        ctx.store.save_answer(spent, "cards", model="m", quality=0.1)
    assert scheduled.regenerate_low_quality(ctx) == {"regenerate_queued": 1}
    assert ctx.jobs.pending_job(ctx.ns, qhash, "regenerate") is not None


def test_predictive_links_a_cluster_of_missed_paraphrases_to_one_answer(ctx):
    embedder = shared_embedder(threads=None)
    _log_misses(ctx, PARAPHRASES * 2 + ["What is the capital of France?"])
    first = scheduled.predictive_precompute(ctx, embedder)
    assert first == {"clusters": 1, "queued": 1, "linked": 0}  # nobody has an answer yet: generate one
    [canonical] = _entries(ctx)
    assert normalize(canonical.text) in {normalize(p) for p in PARAPHRASES}
    again = scheduled.predictive_precompute(ctx, embedder)
    assert again["queued"] == 0  # the job is still pending: single flight
    ctx.store.save_answer(canonical.id, "Open Orders and choose Edit address.", model="m", quality=0.9)
    linked = scheduled.predictive_precompute(ctx, embedder)
    assert linked["linked"] == len(PARAPHRASES) - 1
    for text in PARAPHRASES:
        hit = ctx.store.lookup(question_hash(normalize(text)))
        assert hit is not None and hit[0]["answer"] == "Open Orders and choose Edit address."
    assert len(_entries(ctx)) == 1
    assert scheduled.predictive_precompute(ctx, embedder)["linked"] == 0  # nothing left to do


def test_predictive_respects_its_generation_budget(ctx, config):
    from precache.config import load_settings
    from precache.context import Context

    small = Context(load_settings(**config, predictive_budget=1, predictive_min_misses=2))
    _log_misses(small, ["How do I cancel my order?"] * 3 + ["Where is my parcel?"] * 3
                + ["Do you have a loyalty programme?"] * 3)
    result = scheduled.predictive_precompute(small, shared_embedder(threads=None))
    assert result["clusters"] == 3 and result["queued"] == 1
    assert len(_entries(small)) == 1  # only the one queued became an FAQ entry: precompute adds no more
    assert len(unanswered_faq(small.sessions, small.store)) == 1  # the one whose generation is queued
    small.close()


def test_refresh_and_regenerate_reach_questions_past_their_limit(ctx):
    """Questions already refreshed (or regenerated) do not take the places of those still due."""
    for i in range(3):
        qid, _ = _question(ctx, f"Refreshed question {i}?")
        ctx.store.save_answer(qid, "Old.", model="m", quality=0.9)
        with ctx.sessions() as session:
            session.execute(update(Answer).where(Answer.question_id == qid)
                            .values(expires_at=utcnow() - timedelta(hours=1)))
            session.commit()
        ctx.store.save_answer(qid, "Refreshed.", model="m", quality=0.9)
        gated, _ = _question(ctx, f"Regenerated question {i}?")
        ctx.store.save_answer(gated, "bad", model="m", quality=0.1)
        ctx.store.save_answer(gated, "Good now.", model="m", quality=0.9)
    due, due_hash = _question(ctx, "Due a refresh?")
    ctx.store.save_answer(due, "Stale.", model="m", quality=0.9)
    with ctx.sessions() as session:
        session.execute(update(Answer).where(Answer.question_id == due).values(expires_at=utcnow() - timedelta(hours=1)))
        session.commit()
    gated, gated_hash = _question(ctx, "Due a regeneration?")
    ctx.store.save_answer(gated, "bad", model="m", quality=0.1)
    assert scheduled.refresh_stale(ctx, limit=3) == {"refresh_queued": 1}
    assert ctx.jobs.pending_job(ctx.ns, due_hash, "refresh") is not None
    assert scheduled.regenerate_low_quality(ctx, limit=3) == {"regenerate_queued": 1}
    assert ctx.jobs.pending_job(ctx.ns, gated_hash, "regenerate") is not None


def test_linked_paraphrases_share_one_answer_key_in_the_semantic_index(ctx):
    from precache.semantic.index import SemanticIndex

    embedder = shared_embedder(threads=None)
    for n, text in enumerate(PARAPHRASES):  # each phrasing answered on its own: four different answers
        qid, _ = _question(ctx, text)
        ctx.store.save_answer(qid, f"Answer number {n} about addresses.", model="m", quality=0.9)
    _log_misses(ctx, PARAPHRASES)
    from precache.semantic.store import index_questions

    index_questions(ctx, embedder, [_question(ctx, t)[0] for t in PARAPHRASES])
    index = SemanticIndex.from_settings(ctx.settings)
    index.refresh(ctx)
    assert len(set(index.answer_keys)) == len(PARAPHRASES)
    assert scheduled.predictive_precompute(ctx, embedder)["linked"] == len(PARAPHRASES) - 1
    index.refresh(ctx)  # the epoch moved: the same rows, regrouped in place
    assert len(index) == len(PARAPHRASES) and len(set(index.answer_keys)) == 1
    asked = "How can I change the delivery address?"
    match = index.match(asked, embedder.encode_one(asked))
    assert match is not None and ctx.store.lookup(match.qhash) is not None


def test_predictive_links_and_entries_of_one_tenant_are_not_another_tenants(ctx):
    """Acme's misses choose what acme's askers are served; globex's askers and FAQ precompute never see them."""
    from precache.precompute import unanswered_faq

    embedder = shared_embedder(threads=None)
    acme, globex = ctx.for_tenant("acme"), ctx.for_tenant("globex")
    canonical, _ = _question(ctx, PARAPHRASES[0])
    acme.store.save_answer(canonical, "Acme: open Orders.", model="m", quality=0.9)
    globex.store.save_answer(canonical, "Globex: call us.", model="m", quality=0.9)
    for n in range(3):
        _log_misses(acme, PARAPHRASES + ["Do you ship to Norway?"], asker=f"address:10.0.0.{n}")
    assert scheduled.predictive_precompute(ctx, embedder) == {"clusters": 2, "queued": 1, "linked": 3}
    for text in PARAPHRASES[1:]:
        qhash = question_hash(normalize(text))
        assert acme.store.lookup(qhash)[0]["answer"] == "Acme: open Orders."
        assert globex.store.lookup(qhash) is None  # asked by globex, it is globex's miss: no acme link
    norway = question_hash(normalize("Do you ship to Norway?"))
    assert acme.jobs.pending_job(acme.ns, norway, "quick") is not None
    assert globex.jobs.pending_job(globex.ns, norway, "quick") is None
    assert "Do you ship to Norway?" in [q.text for q in unanswered_faq(acme.sessions, acme.store)]
    assert unanswered_faq(globex.sessions, globex.store) == []  # acme's guess is not generated for globex


def test_predictive_counts_askers_not_asks(ctx, config):
    """One asker asking 50 times does not outrank three askers asking once."""
    from precache.config import load_settings
    from precache.context import Context

    small = Context(load_settings(**config, predictive_budget=1))
    _log_misses(small, ["How do I cancel my order?"] * 50, asker="address:203.0.113.9")
    for n in range(3):
        _log_misses(small, ["Where is my parcel?"], asker=f"asker:user-{n}")
    assert scheduled.missed_questions(small, utcnow() - timedelta(hours=1))[0][1:] == ("Where is my parcel?", 3)
    result = scheduled.predictive_precompute(small, shared_embedder(threads=None))
    assert result == {"clusters": 1, "queued": 1, "linked": 0}  # one asker is one miss, below PREDICTIVE_MIN_MISSES
    assert [q.text for q in _entries(small)] == ["Where is my parcel?"]
    small.close()


def test_predictive_counts_one_asker_once_across_the_phrasings_of_a_cluster(ctx):
    _log_misses(ctx, PARAPHRASES * 5, asker="address:203.0.113.9")
    assert scheduled.predictive_precompute(ctx, shared_embedder(threads=None))["clusters"] == 0


def test_predictive_does_not_count_renewals(ctx):
    """An asker's no-cache (Ladder.renew) is logged, but it is no miss: anyone can send it at will."""
    from precache.semantic.tier import SemanticTier
    from web.ladder import Ask, Ladder

    ladder = Ladder(ctx, SemanticTier(ctx.settings), [])
    for n in range(5):
        ladder.renew(Ask.of("Do you ship to Norway?", asker=f"address:10.0.0.{n}"))
    assert scheduled.predictive_precompute(ctx, shared_embedder(threads=None))["clusters"] == 0
    with ctx.sessions() as session:
        assert session.scalars(select(AskLog.source)).all() == ["renew"] * 5


def test_prune_removes_what_askers_grew_and_nothing_uses_and_keeps_the_rest(ctx):
    from types import SimpleNamespace

    from precache import feedback
    from precache.models import Feedback, LearnedPhrasing, QuestionEmbedding

    old = utcnow() - timedelta(days=ctx.settings.ask_log_retention_days + 1)
    ids = {name: _question(ctx, f"Question that is {name}?")[0]
           for name in ("unused", "asked", "faq", "curated", "target", "recent", "proposed")}
    answers = {name: ctx.store.save_answer(ids[name], f"Answer {name}.", model="m", quality=0.9,
                                           curated=name in ("curated", "target")) for name in ids}
    ctx.store.add_faq(ids["faq"])
    with ctx.sessions() as session:
        session.add(QuestionEmbedding(question_id=ids["unused"], model="m", dim=1, vector=b"\0\0\0\0"))
        session.commit()
    _log_misses(ctx, ["Question that is asked?"], days_ago=1)

    def ask(text):
        n = normalize(text)
        return SimpleNamespace(question=text, normalized=n, qhash=question_hash(n))

    offered = {answers["target"]["answer_id"]: 0.9}
    feedback.record(ctx, ask("Question that is proposed?"), None, answers["target"], True, offered, "asker-1")
    with ctx.sessions() as session:  # everything but "recent" is as old as the retention and more
        session.execute(update(Question).where(Question.id != ids["recent"]).values(created_at=old))
        session.execute(update(LearnedPhrasing).values(taught_at=old))
        session.execute(update(Feedback).values(created_at=utcnow() - timedelta(
            days=ctx.settings.feedback_retention_days + 1)))
        session.commit()

    assert scheduled.prune_unused(ctx, batch=2) == {"feedback": 1, "learned": 1, "questions": 2}
    with ctx.sessions() as session:
        left = set(session.scalars(select(Question.text)))
        assert session.scalar(select(func.count()).select_from(QuestionEmbedding)) == 0
        assert session.scalar(select(func.count()).select_from(Answer).where(
            Answer.question_id == ids["unused"])) == 0
    # The unused question and the proposal nobody confirmed are gone; what is asked, FAQ, curated, a link's
    # target or new stays.
    assert left == {f"Question that is {name}?" for name in ("asked", "faq", "curated", "target", "recent")}


def test_korean_misses_cluster_only_at_their_embedders_cut_off(ctx):
    """multilingual-e5-small puts unrelated Korean questions near 0.85: at the English cut-off (0.7) shipping and
    refunds would be one cluster, and one's answer linked to the other's askers."""
    from precache.config import load_settings
    from precache.semantic import calibration
    from precache.semantic.embedders import embedder_for

    texts = ["배송은 얼마나 걸리나요?", "환불은 어떻게 받나요?", "배송 기간이 얼마나 걸리나요?"]
    vectors = embedder_for(load_settings()).encode(texts)
    assert scheduled.cluster(texts, vectors, 0.7) == [[0, 1, 2]]
    korean = calibration.for_language(load_settings(), "ko").join_similarity
    assert scheduled.cluster(texts, vectors, [korean] * 3) == [[0, 2], [1]]  # the paraphrases, and refunds alone
