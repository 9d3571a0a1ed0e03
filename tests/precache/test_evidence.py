"""The evidence askers give: per-answer thresholds, negatives as rivals, vetoes."""

import numpy as np
import pytest

from precache.evidence import Evidence
from precache.semantic.index import SemanticIndex


def _fed(*observations, **kw) -> Evidence:
    evidence = Evidence(floor=0.9, gap=0.02, support=2, **kw)
    for confidence, fitted in observations:
        evidence.add(None, "", f"q{confidence}", {"a": confidence}, "a" if fitted else None, None if fitted else "a")
    return evidence


def test_an_answer_without_evidence_keeps_the_global_threshold():
    assert _fed().threshold("a", 0.97) == 0.97


def test_right_observations_below_the_prior_lower_it_to_above_the_worst_wrong_one():
    evidence = _fed((0.97, True), (0.96, True), (0.93, False))
    assert evidence.threshold("a", 0.97) == pytest.approx(0.95)


def test_too_little_support_keeps_the_prior_and_the_floor_holds():
    assert _fed((0.95, True), (0.93, False)).threshold("a", 0.97) == 0.97
    assert _fed((0.95, True), (0.96, True)).threshold("a", 0.97) == pytest.approx(0.9)


def test_a_wrong_observation_raises_a_lowered_threshold_at_once():
    evidence = _fed((0.95, True), (0.96, True))
    assert evidence.threshold("a", 0.97) == pytest.approx(0.9)
    evidence.add(None, "", "x", {"a": 0.955}, None, "a")
    assert evidence.threshold("a", 0.97) == 0.97  # 0.975: no right observations above it


def test_learning_off_is_the_global_rule():
    assert _fed((0.95, True), (0.96, True), enabled=False).threshold("a", 0.97) == 0.97


def test_a_rejection_vetoes_that_answer_for_that_phrasing_and_tenant_only():
    evidence = Evidence()
    evidence.add(np.ones(3, dtype=np.float32) / 3 ** 0.5, "t1", "h", {"a": 0.9, "b": 0.8}, None, "a")
    assert evidence.vetoed("t1", "h") == {"a"} and evidence.vetoed("t2", "h") == set()
    assert evidence.rival("a", np.ones(3, dtype=np.float32) / 3 ** 0.5, "t1") == pytest.approx(1.0)
    assert evidence.rival("a", np.ones(3, dtype=np.float32) / 3 ** 0.5, "t2") is None  # per tenant
    assert evidence.rival("b", np.ones(3, dtype=np.float32), "t1") is None  # a rejection says nothing of the others


def test_none_fits_is_a_rival_of_every_answer_shown():
    evidence = Evidence()
    evidence.add(np.array([1.0, 0.0], dtype=np.float32), "", "h", {"a": 0.9, "b": 0.8}, None, None)
    assert evidence.rival("a", np.array([0.6, 0.8], dtype=np.float32)) == pytest.approx(0.6)
    assert evidence.rival("b", np.array([1.0, 0.0], dtype=np.float32)) == pytest.approx(1.0)
    assert evidence.rival("c", np.array([1.0, 0.0], dtype=np.float32)) is None


def test_a_negative_near_an_ask_takes_the_margin_of_the_answer_it_rejects():
    index = SemanticIndex(threshold=1.0)
    index.add([1, 2], ["h1", "h2"], ["card", "loan"], np.eye(2, dtype=np.float32), ["card", "loan"])
    ask = np.array([0.99, 0.141], dtype=np.float32)
    assert index.match("ask", ask) is not None
    index.evidence.add(ask, "", "other", {"card": 0.9}, None, None)  # none fitted a question right there
    assert index.match("ask", ask) is None
    assert index.best("ask", ask).margin < 0


def test_one_tenants_evidence_moves_only_that_tenants_decisions():
    evidence = Evidence(floor=0.9, gap=0.02, support=2)
    for n, confidence in enumerate((0.95, 0.96)):
        evidence.add(None, "acme", f"q{n}", {"a": confidence}, "a", None, f"asker-{n}")
    assert evidence.threshold("a", 0.97, "acme") == pytest.approx(0.9)
    assert evidence.threshold("a", 0.97, "globex") == 0.97 and evidence.threshold("a", 0.97) == 0.97
    evidence.add(np.array([1.0, 0.0], dtype=np.float32), "acme", "none", {"a": 0.9}, None, None, "asker-9")
    assert evidence.rival("a", np.array([1.0, 0.0], dtype=np.float32), "acme") == pytest.approx(1.0)
    assert evidence.rival("a", np.array([1.0, 0.0], dtype=np.float32), "globex") is None


def test_one_askers_word_counts_once_per_phrasing_and_a_few_times_per_answer():
    evidence = Evidence(floor=0.9, gap=0.02, support=2, per_asker=3)
    def unit(angle: float) -> np.ndarray:
        return np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)

    for n in range(20):  # one asker says "none fits" on twenty phrasings, spread around answer a
        evidence.add(unit(n / 10), "", f"phrasing-{n}", {"a": 0.95}, None, None, "mallory")
    # Bounded: only the first three count, so a question at the twentieth's place is not next to a negative.
    assert evidence.rival("a", unit(1.9)) == pytest.approx(float(np.cos(1.9 - 0.2)), abs=1e-5)
    for n in range(2):  # the same phrasing twice from one asker: one observation
        evidence.add(None, "", "twice", {"b": 0.96}, "b", None, "alice")
    evidence.add(None, "", "other", {"b": 0.95}, "b", None, "bob")
    assert evidence.threshold("b", 0.97) == pytest.approx(0.9)  # alice once and bob: support 2
    assert len(evidence.observations[("", "b")]) == 2


def test_a_protected_answer_tunes_its_threshold_but_no_one_asker_takes_it_away():
    evidence = Evidence(floor=0.9, gap=0.02, support=2)
    ask = np.array([1.0, 0.0], dtype=np.float32)
    for n, confidence in enumerate((0.95, 0.96)):
        evidence.add(None, "", f"q{n}", {"faq": confidence}, "faq", None, f"asker-{n}", {"faq"})
    assert evidence.threshold("faq", 0.97) == pytest.approx(0.9)  # what it fits still counts
    evidence.add(ask, "", "wrong", {"faq": 0.93}, None, "faq", "mallory", {"faq"})
    evidence.add(ask, "", "none", {"faq": 0.93}, None, None, "mallory", {"faq"})
    assert evidence.vetoed("", "wrong") == set() and evidence.rival("faq", ask) is None  # one asker: nothing
    assert 0.9 <= evidence.threshold("faq", 0.97) <= 0.97  # never above the global rule
    evidence.add(ask, "", "none again", {"faq": 0.93}, None, None, "trent", {"faq"})
    assert evidence.rival("faq", ask) == pytest.approx(1.0)  # a second asker corroborates the negatives
    assert evidence.vetoed("", "wrong") == set()


def test_negatives_grow_the_store_in_constant_time_each_and_every_one_still_counts():
    evidence, rng, copies, store = Evidence(), np.random.default_rng(7), 0, None
    vectors = rng.normal(size=(3000, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for n, vector in enumerate(vectors):
        evidence.add(vector, "", f"q{n}", {f"a{n % 5}": 0.9}, None, None, asker=f"asker{n}")
        copies, store = copies + (evidence._vectors is not store), evidence._vectors
    # Room doubles when full: 3,000 negatives copy the store about log2(3000/64) times, not 3,000 times.
    assert copies <= 8
    probe = vectors[1234]
    assert evidence.rival("a4", probe) == pytest.approx(1.0, abs=1e-5)  # 1234 % 5 == 4: its own negative
    assert evidence.rival("a0", probe) == pytest.approx(float(np.max(vectors[0::5] @ probe)), abs=1e-5)
