"""The decision to serve a neighbour's answer: one scorer, used by the ladder and by the in-flight join alike.

Decisions are made per *answer*, not per cached question: the cached questions that share an answer
(an FAQ entry's phrasings) vote together. An answer's score mixes its nearest phrasing's cosine
similarity (weight NEAREST_WEIGHT) with the similarity to the centroid of all its phrasings.
Confidence is that score plus MARGIN_WEIGHT times its margin (capped at MARGIN_CAP) over the best
*other* answer: a question that sits between two answers is ambiguous, however similar it is to
either. A curated answer's rivals are the other curated answers only: the answers the workers
generate for misses next to an FAQ entry would otherwise take its margin from every later paraphrase
(steady-state workload 68 % -> 77 % instant, 0 wrong; docs/benchmarks.md).
An answer is served when its confidence clears the threshold and one of its phrasings passes
the guards. The constants and the default threshold (0.97) are the ones, of those tried, that serve
the most while keeping wrong hits <= 0.5 % on every one of 20 sets at once: 18 banking77 caches (3, 5
and 8 phrasings per intent, three seeds, all intents answered or a quarter of them left unanswered,
their queries then asking as near-domain out-of-scope questions), StackFAQ and GPTCache's mock data
(0.966 is the edge with the guards on; bench/semantic_quality.py prints the sets).

That threshold is set by the densest caches, where intents sit close together. With a threshold
floor below the threshold (SEMANTIC_THRESHOLD_FLOOR; off by default) the curated answers (an
imported FAQ) are also checked against themselves: each curated phrasing is asked with its own
answer taken out, and the most confident of those (necessarily wrong) matches is how confident a
wrong match can look in this FAQ. Curated answers are then served from that confidence, kept between
the floor and the threshold: an FAQ whose entries are far apart gets more hits (StackFAQ at floor
0.9: 34 % -> 43 %, wrong hits <= 0.07 % with a quarter of its entries missing and 1500 out-of-scope
askers), a dense one keeps the threshold. It is off by default because the FAQ alone cannot see the
askers: with many near-domain questions it has no entry for, a sparse FAQ's wrong hits doubled."""

from dataclasses import dataclass

NEAREST_WEIGHT = 0.85
MARGIN_WEIGHT = 0.7
MARGIN_CAP = 0.3
CANDIDATES = 10


@dataclass(frozen=True)
class SemanticMatch:
    """A cached question close to the asked one, with how sure the tier is of it."""

    question_id: int
    qhash: str
    matched_question: str
    similarity: float
    margin: float = 0.0
    confidence: float = 0.0
    threshold: float = 0.0  # the least confidence that serves this answer (lower for a sparse FAQ's curated answers)
    key: str = ""  # the answer's key: cached questions that share an answer share it


def answer_score(nearest: float, to_centroid: float) -> float:
    """Return how close an ask is to one answer: its nearest phrasing's similarity and their centroid's, mixed."""
    return NEAREST_WEIGHT * nearest + (1 - NEAREST_WEIGHT) * to_centroid


def confidence(score: float, rival: float) -> tuple[float, float]:
    """Return (margin, confidence) of an answer's score over its best rival's."""
    margin = score - rival
    return margin, score + MARGIN_WEIGHT * min(margin, MARGIN_CAP)


def serves(similarity: float, confidence: float, threshold: float, min_similarity: float) -> bool:
    """Decide whether a candidate's answer is served: near enough, and confident enough for its answer's threshold."""
    return not (similarity < min_similarity or confidence < threshold)
