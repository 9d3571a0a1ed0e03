"""The scheduled jobs that keep the cache ahead of the askers (run by Celery beat through worker.tasks).

Each job is idempotent: it holds a Redis lock while it runs (a second copy started at the same
time returns at once), and it queues generation through the single-flight jobs, so a question
already being generated is never queued twice.

- precompute:  FAQ questions without a servable answer are generated.
- predictive:  misses of the last PREDICTIVE_WINDOW_S seconds, grouped into clusters of paraphrases,
               become FAQ candidates: the most-missed phrasing of each frequent cluster is answered
               (at most PREDICTIVE_BUDGET new generations a run) and the other phrasings are linked
               to it, so that they, and new paraphrases near them, are answered from cache.
- refresh:     answers past their TTL are generated again (stale-while-revalidate does the same on demand).
- regenerate:  questions whose answers all failed the quality gate are generated again with the
               detailed settings, up to QUALITY_MAX_TRIES.
- prune:       ask-log rows older than ASK_LOG_RETENTION_DAYS are deleted, then what askers grew and nothing
               uses any more (old feedback, stale learned links, questions nobody asked since: prune_unused).

Predictive precompute is per tenant and hard to inflate. Questions are shared by every tenant (one row
per normalised text), so its FAQ entries and links are not kept on them (a flag or `canonical_id` there
would act for every tenant: tenant A's misses would choose what B's askers are served, and FAQ
precompute would generate A's guesses in B's namespace); they are rows of `predicted_questions`, each
with the tenant whose misses made it, read only for that tenant's askers and FAQ precompute. A link
table rather than linking only questions that one tenant asked: a question one tenant alone asks
today may be asked by another tomorrow, and would then be answered through the first one's link.
A miss counts once per asker (`ask_log.asker`; a row without one, logged before askers were or by
`precache ask`, counts as its own asker), and a cluster by the distinct askers of all its phrasings:
one client asking one question, or fifty phrasings of it, a thousand times counts once. An asker's
no-cache is logged as "renew", not as a miss: anyone can send it at will.
"""

import logging
import uuid
from collections import defaultdict
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import String, cast, delete, func, select

from precache import asklog, keys
from precache.feedback import forget_deleted_feedback
from precache.context import AppContext
from precache.db import session_scope
from precache.language import KOREAN, language_of
from precache.models import (Answer, AskLog, FaqQuestion, Feedback, LearnedPhrasing, PredictedQuestion, Question,
                             utcnow)
from precache.normalize import normalize
from precache.semantic import calibration
from precache.store import AnswerStore

log = logging.getLogger(__name__)
MISS_SOURCES = ("fallback", "generated")  # not "renew": an asker's no-cache is no miss


@contextmanager
def exclusive(ctx: AppContext, name: str, ttl_s: int):
    """Yield True while holding the job's lock, False when another copy holds it."""
    lock = keys.scheduled_lock(name)
    token = uuid.uuid4().hex
    held = bool(ctx.redis.set(lock, token, nx=True, ex=ttl_s))
    try:
        yield held
    finally:
        if held and ctx.redis.get(lock) == token.encode():
            ctx.redis.delete(lock)


def tenants(sessions) -> list[str]:
    """Return the tenants that have answers ("" is the default namespace, always first)."""
    with sessions() as session:
        found = set(session.scalars(select(Answer.tenant).distinct()))
    return ["", *sorted(t for t in found if t)]


def each_tenant(ctx: AppContext, job) -> dict:
    """Run `job(tenant context)` for every tenant with answers; return the summed counts."""
    counts: dict = defaultdict(int)
    for tenant in tenants(ctx.sessions):
        for name, value in job(ctx.for_tenant(tenant)).items():
            counts[name] += value
    return dict(counts)


def refresh_stale(ctx: AppContext, limit: int = 100) -> dict:
    """Queue a refresh for questions whose served answer is past its TTL (at most `limit` a run)."""
    def job(tctx: AppContext):
        # Questions with a fresh quick answer beside the expired one are left out in SQL, before the limit:
        # skipped after it, the first `limit` refreshed questions would fill every later run.
        fresh = (select(Answer.question_id)
                 .where(Answer.level == "quick", Answer.expires_at > utcnow(), tctx.store.servable()).correlate(None))
        expired = (
            select(Question).join(Answer)
            .where(tctx.store.servable(), ~Answer.curated, Answer.namespace == tctx.store.namespace,
                   Answer.expires_at < utcnow(), Question.id.not_in(fresh))
            .group_by(Question.id).order_by(Question.id).limit(limit)
        )
        return {"refresh_queued": _queue_each(tctx, expired, "refresh")}

    return each_tenant(ctx, job)


def regenerate_low_quality(ctx: AppContext, limit: int = 100) -> dict:
    """Queue a regeneration for questions with no servable answer whose answers failed the quality gate."""
    return each_tenant(ctx, lambda tctx: {"regenerate_queued": _queue_each(tctx, _failed(tctx, limit), "regenerate")})


def _failed(tctx: AppContext, limit: int):
    """The query of the tenant's questions with no servable answer, only answers below the gate, and tries left."""
    settings = tctx.settings
    # Answered questions and spent try budgets are left out in SQL, before the limit (see refresh_stale).
    answered = select(Answer.question_id).where(tctx.store.servable()).correlate(None)
    return (
        select(Question).join(Answer)
        .where(Answer.namespace == tctx.store.namespace, ~Answer.curated,
               Answer.quality < settings.quality_threshold, Question.id.not_in(answered))
        .group_by(Question.id).having(func.count(Answer.id) < settings.quality_max_tries)
        .order_by(Question.id).limit(limit)
    )


def _queue_each(tctx: AppContext, query, kind: str) -> int:
    """Queue a job for each question `query` selects (one already pending is joined, not counted); return how many."""
    queued = 0
    with tctx.sessions() as session:
        questions = list(session.scalars(query))
    for question in questions:
        _, joined = tctx.jobs.enqueue(tctx.ns, question.qhash, lambda q=question: q.id, kind=kind)
        queued += not joined
    return queued


def prune_ask_log(ctx: AppContext, batch: int = 5000) -> dict:
    """Delete ask-log rows past the retention, in batches; return how many."""
    cutoff = utcnow() - timedelta(days=ctx.settings.ask_log_retention_days)
    return {"pruned": _delete_in_batches(ctx, AskLog, AskLog.asked_at < cutoff, batch)}


def prune_unused(ctx: AppContext, batch: int = 1000) -> dict:
    """Delete what askers grew and nothing uses any more; return how many rows of each.

    - feedback past FEEDBACK_RETENTION_DAYS;
    - learned links taught and never confirmed, or retracted, before ASK_LOG_RETENTION_DAYS;
    - questions created before ASK_LOG_RETENTION_DAYS that nobody asked since (the ask log keeps that long)
      and nothing keeps: no FAQ entry in any tenant, no curated, pinned or approved answer, no prediction, no
      learned link, no paraphrase linked to them or link of theirs; their generated answers and embeddings go
      with them (ask-log rows and feedback keep their text, the answer id set to null).
    """
    cutoff = utcnow() - timedelta(days=ctx.settings.ask_log_retention_days)
    feedback_cutoff = utcnow() - timedelta(days=ctx.settings.feedback_retention_days)
    stale_links = ((LearnedPhrasing.confirmed_at.is_(None) & (LearnedPhrasing.taught_at < cutoff))
                   | (LearnedPhrasing.retracted_at < cutoff))
    kept = (select(FaqQuestion.question_id)
            .union(select(PredictedQuestion.question_id), select(PredictedQuestion.canonical_id),
                   select(LearnedPhrasing.question_id), select(LearnedPhrasing.target_id),
                   select(Answer.question_id).where(Answer.curated | Answer.pinned | (Answer.review == "approved")),
                   select(Question.canonical_id).where(Question.canonical_id.is_not(None))))
    unused = select(Question.id).where(Question.created_at < cutoff, Question.canonical_id.is_(None),
                                       Question.id.not_in(kept), Question.qhash.not_in(select(AskLog.qhash)))
    deleted = {"feedback": _delete_in_batches(ctx, Feedback, Feedback.created_at < feedback_cutoff, batch),
               "learned": _delete_in_batches(ctx, LearnedPhrasing, stale_links, batch),
               "questions": _delete_in_batches(ctx, Question, Question.id.in_(unused), batch)}
    if deleted["feedback"]:
        forget_deleted_feedback(ctx.redis)
    return deleted


def _delete_in_batches(ctx: AppContext, model, condition, batch: int) -> int:
    """Delete the rows of `model` meeting `condition`, `batch` at a time; return how many."""
    deleted = 0
    while True:
        with session_scope(ctx.sessions) as session:
            ids = list(session.scalars(select(model.id).where(condition).limit(batch)))
            if ids:
                session.execute(delete(model).where(model.id.in_(ids)))
        deleted += len(ids)
        if len(ids) < batch:
            return deleted


def missed_questions(ctx: AppContext, since) -> list[tuple[str, str, int]]:
    """Return (qhash, question, askers) for questions missed in this namespace since a time, most askers first."""
    askers = func.count(func.distinct(_asker()))
    query = (
        _misses(ctx, since, select(AskLog.qhash, func.min(AskLog.question), askers))
        .group_by(AskLog.qhash)
        .order_by(askers.desc(), AskLog.qhash)
        .limit(ctx.settings.predictive_max_questions)
    )
    asklog.catch_up(ctx)
    with ctx.sessions() as session:
        return [tuple(row) for row in session.execute(query)]


def missed_by(ctx: AppContext, since, qhashes: list[str]) -> dict[str, set[str]]:
    """Return who missed each of these questions in this namespace since a time."""
    askers: dict[str, set[str]] = defaultdict(set)
    with ctx.sessions() as session:
        for at in range(0, len(qhashes), 500):
            query = _misses(ctx, since, select(AskLog.qhash, _asker()).distinct())
            for qhash, asker in session.execute(query.where(AskLog.qhash.in_(qhashes[at:at + 500]))):
                askers[qhash].add(asker)
    return askers


def _misses(ctx: AppContext, since, query):
    """The query on the misses of this namespace since a time."""
    return query.where(AskLog.asked_at >= since, AskLog.namespace == ctx.store.namespace,
                       AskLog.source.in_(MISS_SOURCES))


def _asker():
    """Who asked, as counted: the logged asker, else the row itself (no asker cannot be one asker of many rows)."""
    return func.coalesce(AskLog.asker, "row:" + cast(AskLog.id, String))


def cluster(questions: list[str], vectors, similarity: float | list[float]) -> list[list[int]]:
    """Group paraphrases greedily: each question joins the first cluster whose seed it is close to
    (cosine >= similarity, or the larger of the two questions' own when given per question) and whose
    seed it does not contradict (the semantic guards)."""
    from precache.semantic.guards import compatible, details

    seeds: list[int] = []
    groups: list[list[int]] = []
    facts = [details(q) for q in questions]
    least = similarity if isinstance(similarity, list) else [similarity] * len(questions)
    for i in range(len(questions)):
        for g, seed in enumerate(seeds):
            if (float(vectors[i] @ vectors[seed]) >= max(least[i], least[seed])
                    and compatible(facts[i], facts[seed]) is None):
                groups[g].append(i)
                break
        else:
            seeds.append(i)
            groups.append([i])
    return groups


def predictive_precompute(ctx: AppContext, embedder) -> dict:
    """Turn frequent clusters of missed paraphrases into FAQ entries answered ahead of the next asker."""
    return each_tenant(ctx, lambda tctx: _predict(tctx, embedder))


def _predict(ctx: AppContext, embedder) -> dict:
    settings = ctx.settings
    since = utcnow() - timedelta(seconds=settings.predictive_window_s)
    missed = missed_questions(ctx, since)
    if not missed:
        return {"clusters": 0, "queued": 0, "linked": 0}
    askers = missed_by(ctx, since, [qhash for qhash, _, _ in missed])
    frequent = _frequent_groups(missed, askers, embedder, settings)
    queued, linked, seen = _precompute_groups(ctx, missed, frequent)
    if linked:
        from precache.semantic.store import index_questions, regroup

        index_questions(ctx, embedder, seen)
        regroup(ctx.redis)
    log.info("predictive precompute: %d clusters of misses, %d generations queued, %d paraphrases linked",
             len(frequent), queued, linked)
    return {"clusters": len(frequent), "queued": queued, "linked": linked}


def _frequent_groups(missed: list, askers: dict[str, set[str]], embedder, settings) -> list[list[int]]:
    """Cluster the missed questions; return the clusters enough distinct askers missed, most askers first."""
    texts = [text for _, text, _ in missed]
    # A Korean question's embedder puts unrelated questions at cosines English paraphrases have: its own cut-off.
    korean = calibration.for_language(settings, KOREAN).join_similarity
    least = [korean if language_of(text) == KOREAN else settings.predictive_cluster_similarity for text in texts]
    groups = cluster(texts, embedder.encode(texts), least)
    # One asker counts once per cluster, however many of its phrasings they asked.
    counts = [len(set().union(*(askers[missed[i][0]] for i in g))) for g in groups]
    frequent = [(n, g) for n, g in zip(counts, groups) if n >= settings.predictive_min_misses]
    return [g for _, g in sorted(frequent, key=lambda item: -item[0])]


def _precompute_groups(ctx: AppContext, missed: list, frequent: list[list[int]]) -> tuple[int, int, list[int]]:
    """Queue an answer for each cluster without one, link the paraphrases of those with one, for this tenant.

    Return (generations queued, paraphrases linked, the question ids seen).
    """
    queued = linked = 0
    seen: list[int] = []
    for group in frequent:
        # The cluster's questions, most askers first.
        members = [_question(ctx.sessions, ctx.store, missed[i][0], missed[i][1]) for i in group]
        seen += [q.id for q in members]
        answered = [q for q in members if ctx.store.has_answer(q.id)]
        canonical = answered[0] if answered else members[0]
        if not answered and queued >= ctx.settings.predictive_budget:
            continue  # not an FAQ entry yet either: FAQ precompute would generate it past the budget
        _make_entry(ctx, canonical)
        if not answered:
            _, joined = ctx.jobs.enqueue(ctx.ns, canonical.qhash, lambda q=canonical: q.id, background=True)
            queued += not joined
            continue  # linked on a later run, once the canonical question has its answer
        linked += _link(ctx, canonical, [q for q in members if q.id != canonical.id])
    return queued, linked, seen


def _question(sessions, store: AnswerStore, qhash: str, text: str) -> Question:
    qid = store.ensure_question(text.strip(), normalize(text), qhash)
    with sessions() as session:
        return session.get(Question, qid)


def _predictions(ctx: AppContext, question_ids: list[int]) -> dict[int, int | None]:
    """Return this tenant's predictions of these questions: {question id: its canonical id, None for an entry}."""
    query = select(PredictedQuestion.question_id, PredictedQuestion.canonical_id).where(
        PredictedQuestion.tenant == ctx.store.tenant, PredictedQuestion.question_id.in_(question_ids))
    with ctx.sessions() as session:
        return dict(session.execute(query).all())


def _make_entry(ctx: AppContext, question: Question) -> None:
    """Make the question one of this tenant's FAQ entries (FAQ precompute answers it again should it lose its
    answer), unless it is one already or linked to one."""
    if question.id in _predictions(ctx, [question.id]):
        return
    with session_scope(ctx.sessions) as session:
        session.add(PredictedQuestion(tenant=ctx.store.tenant, question_id=question.id))


def _link(ctx: AppContext, canonical: Question, members: list[Question]) -> int:
    """Point paraphrases at the canonical question for this tenant's askers: its answer is served for them
    (their own stay stored)."""
    linked = _predictions(ctx, [canonical.id, *(m.id for m in members)])
    todo = [m.id for m in members if linked.get(m.id) != canonical.id and m.id != linked.get(canonical.id)]
    if not todo:
        return 0
    tenant = ctx.store.tenant
    with session_scope(ctx.sessions) as session:
        session.execute(delete(PredictedQuestion).where(PredictedQuestion.tenant == tenant,
                                                        PredictedQuestion.question_id.in_(todo)))
        session.add_all(PredictedQuestion(tenant=tenant, question_id=qid, canonical_id=canonical.id) for qid in todo)
    for member in members:
        if member.id in todo:
            ctx.store.recache(member.qhash)
    return len(todo)
