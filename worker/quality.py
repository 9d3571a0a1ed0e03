"""The quality score of an answer: a number in [0, 1] with the components it is made of.

    quality = weighted mean of the signals at hand (relevance, reference agreement, model
              confidence, judge) x the product of the degeneration penalties

Signals, each in [0, 1]:
- relevance: cosine similarity of question and answer embeddings, rescaled (an answer that
  talks about the question scores high, another question's answer low);
- reference: cosine similarity of the answer to the FAQ's reference answer, when there is one;
- confidence: exp(mean token log-probability) of the generation, when it came from a model;
- judge: an optional LLM rating (off by default).

Relevance is read on the scale of the embedder of the question's language: a Korean question and its
answer are embedded by the Korean model (precache/data/calibration.yaml names its "unrelated" and "on
topic" cosines), and a Korean question with an answer in another language is at cosine 0.

An answer written from passages of the team's documents has one more: groundedness, the share of its
content words that its passages contain (precache.documents.grounding). Below GROUNDED_MIN_SUPPORT
the `unsupported` penalty puts it under the serving threshold: it claims what its passages don't say.

Penalties, each a factor in [0, 1] (1 = no problem found): empty, truncated mid-sentence,
repeated n-grams (loops), refusal, an answer that only restates the question (small models echo
a question they cannot answer, in Korean above all), an answer in another language than the question, and
injection: a link, e-mail address or phone number, or an instruction to ignore what came before or
to send a password, that no trusted source (the FAQ's reference answer) vouches for scores 0.
The worker scores every generated answer with `score` before storing it; `precache score`
runs the same function over a JSONL file.
"""

import math
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from precache.documents.grounding import groundedness
from precache.language import KOREAN, language_of
from precache.semantic import calibration

WEIGHTS = {"relevance": 1.0, "reference": 1.0, "confidence": 0.5, "judge": 1.0}
# Cosine similarities of MiniLM below RELEVANCE_FLOOR mean "unrelated", above RELEVANCE_CEIL "on topic".
RELEVANCE_FLOOR, RELEVANCE_CEIL = 0.05, 0.45
REFERENCE_FLOOR, REFERENCE_CEIL = 0.2, 0.8

_REFUSAL = re.compile(
    r"\b(i('| a)?m (sorry|afraid)|i (can ?not|can't|am unable to|won't|do not have|don't have) "
    r"(help|assist|answer|provide|access|information)|as an ai( language model)?|"
    r"i('m| am) not able to (help|assist|answer|provide))\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w+", re.UNICODE)
_TERMINAL = tuple(".!?)]}\"'`*:;>»。！？…")
# Words an English sentence does not end with: an answer ending in one was cut off.
_DANGLING = frozenset(
    "a an the and or but of to in on at for with by from as is are was were be been that which who "
    "whose your my our their its this these those if then than so because when while where into "
    "onto can could should would will may might must not no very also".split()
)


@dataclass
class Score:
    quality: float
    components: dict = field(default_factory=dict)


def _scale(value: float, low: float, high: float) -> float:
    return float(min(1.0, max(0.0, (value - low) / (high - low))))


def truncation_penalty(text: str, finish_reason: str | None = None) -> float:
    """Return 1.0 for an answer that ends cleanly, less for one cut off mid-sentence."""
    stripped = text.rstrip()
    if not stripped:
        return 0.0
    if stripped.count("```") % 2:  # an unclosed code block
        return 0.4
    ended = stripped.endswith(_TERMINAL)
    last = (_WORD.findall(stripped[-40:]) or [""])[-1].lower()
    if finish_reason == "length" and not ended:
        return 0.3
    if not ended and last in _DANGLING:
        return 0.3
    if not ended:
        return 0.7
    return 1.0


def repetition_penalty(text: str, n: int = 3) -> float:
    """Return 1.0 when no word n-gram repeats much, down to 0.0 for an answer that loops."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 2 * n + 2:
        return 1.0
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    total = sum(grams.values())
    repeated = sum(count - 1 for count in grams.values() if count > 1)
    share = repeated / total  # 0: every n-gram distinct; near 1: the same phrase again and again
    return float(min(1.0, max(0.0, 1.0 - 2.0 * max(0.0, share - 0.1))))


def _letter_pairs(text: str) -> set[str]:
    letters = "".join(_WORD.findall(text.casefold()))
    return {letters[i:i + 2] for i in range(len(letters) - 1)}


def echo_penalty(question: str, answer: str) -> float:
    """Return 0.2 for an answer that only restates its question (80 % of its letter pairs are the question's)."""
    pairs = _letter_pairs(answer)
    if len(pairs) < 3:
        return 1.0
    return 0.2 if len(pairs & _letter_pairs(question)) >= 0.8 * len(pairs) else 1.0


def refusal_penalty(text: str) -> float:
    """Return 0.2 for an answer that refuses or disclaims instead of answering, else 1.0."""
    return 0.2 if _REFUSAL.search(text[:300]) else 1.0


def language_probabilities(text: str) -> dict[str, float]:
    """Return the probability of each language (ISO 639-1 code) for a text (py3langid, loaded once)."""
    global _langid
    if _langid is None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        _langid = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    return {lang: float(prob) for lang, prob in _langid.rank(text)}


_langid = None


def language_penalty(question: str, answer: str) -> float:
    """Return 0.1 when the answer is confidently in a language the question is unlikely to be in, else 1.0.

    Short questions are often ambiguous ("Hotel Wi-Fi?"), so the question only has to make the
    answer's language unlikely (< 5 %), while the answer must be clear about its own (>= 90 %).
    """
    if len(_WORD.findall(answer)) < 4 or len(_WORD.findall(question)) < 3:
        return 1.0  # too short to tell ("hello", "Wi-Fi?")
    answer_probs = language_probabilities(answer)
    lang = max(answer_probs, key=answer_probs.get)
    if answer_probs[lang] < 0.9:
        return 1.0
    return 0.1 if language_probabilities(question).get(lang, 0.0) < 0.05 else 1.0


_SENTENCE_END = re.compile(r"(?<=[^\d\s])[.!?:](?=\s|$)|\n")  # "1." starts a list item, it ends nothing


def trim_to_sentence(text: str, keep: float = 0.4) -> str:
    """Cut a generation that hit its token limit back to its last complete sentence or line.

    Returns the text unchanged when that would keep less than `keep` of it (better a visibly
    cut answer, penalised by the score, than a stub).
    """
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    if not ends or ends[-1] < keep * len(text):
        return text
    return text[:ends[-1]].rstrip()


def finished(text: str, finish_reason: str | None) -> tuple[str, str | None]:
    """Return the text of a generation as it is stored and scored, and its finish reason.

    An answer cut at the token limit keeps its complete sentences; its reason becomes "trimmed" when
    that removed anything.
    """
    text = text.strip()
    if finish_reason != "length":
        return text, finish_reason
    trimmed = trim_to_sentence(text)
    return trimmed, ("trimmed" if trimmed != text else finish_reason)


_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"'`]+|\b(?:[a-z0-9-]+\.)+(?:com|net|org|io|info|biz|xyz|ru|cn|"
                  r"example)\b(?:/[^\s<>\"'`]*)?", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@(?:[\w-]+\.)+[a-z]{2,}\b", re.IGNORECASE)
# 9 to 15 digits in groups: a phone number, not a date, a year, a version (fewer digits or dots) or an id in a link.
_PHONE = re.compile(r"(?<![\w.=/#&?%-])\+?\(?\d(?:[\s()-]{0,2}\d){8,14}(?![\w.])")
# "Never send your password" is advice, not an instruction: a negation just before the verb clears it.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:the\s+|your\s+)?(?:above|previous|prior|earlier|preceding)|"
    r"(?<!never\s)(?<!not\s)(?<!n't\s)\b(?:send|e-?mail|give|share|tell|text|reply with|provide)\b[^.!?\n]{0,40}?\b(?:your|their|the)\s+"
    r"(?:password|passcode|pin|credentials|login details|card number|cvv|security code|one-time code)",
    re.IGNORECASE)


def _unvouched(answer: str, sources: list[str]) -> list[str]:
    """Return the links, addresses, phone numbers and instructions of an answer that no source contains."""
    trusted = " ".join(sources).lower()
    digits = {re.sub(r"\D", "", m) for source in sources for m in _PHONE.findall(source)}
    found = [m for m in _URL.findall(answer) if _bare_url(m) not in trusted]
    found += [m for m in _EMAIL.findall(answer) if m.lower() not in trusted]
    found += [m for m in _INSTRUCTION.findall(answer) if " ".join(m.lower().split()) not in trusted]
    found += [m for m in _PHONE.findall(answer)
              if not any(d.endswith(re.sub(r"\D", "", m)[-9:]) for d in digits)]
    return found


def _bare_url(url: str) -> str:
    """Return a link as its host and path, lower case, without scheme, "www." or closing punctuation."""
    url = re.sub(r"^(?:https?://)?(?:www\.)?", "", url.lower())
    return url.rstrip(".,;:!?)]}*").rstrip("/")


def injection_penalty(answer: str, sources: list[str]) -> float:
    """Return 0.0 for an answer that points its readers where no trusted source does, else 1.0."""
    # A stored answer is served to every asker of its question and of questions near it, so what the
    # asker wrote cannot vouch for a link or an instruction: one asker could plant it for the others.
    return 0.0 if _unvouched(answer, sources) else 1.0


# The names penalties() returns, as stored in an answer's quality_components.
PENALTIES = ("empty", "truncated", "repetition", "refusal", "echo", "language", "injection", "unsupported")


def unsupported_penalty(support: float, least: float) -> float:
    """Return 1.0 for an answer its passages support enough, else a factor that keeps it under 0.5."""
    return 1.0 if support >= least else round(0.5 * support / least, 4) if least else 1.0


def penalties(question: str, answer: str, finish_reason: str | None = None,
              reference: str | None = None, passages: list[str] | None = None,
              least_support: float = 0.7) -> dict[str, float]:
    """Return each degeneration penalty of an answer (1.0 = no problem found)."""
    if not answer.strip():
        return {"empty": 0.0}
    found = {
        "empty": 1.0,
        "truncated": truncation_penalty(answer, finish_reason),
        "repetition": repetition_penalty(answer),
        "refusal": refusal_penalty(answer),
        "echo": echo_penalty(question, answer),
        "language": language_penalty(question, answer),
        # What its passages say vouches for a link too: they are the team's own documents.
        "injection": injection_penalty(answer, ([reference] if reference else []) + list(passages or [])),
    }
    if passages is not None:
        found["unsupported"] = unsupported_penalty(groundedness(answer, passages), least_support)
    return found


class Scorer:
    """Score (question, answer[, reference]) pairs with one embedder and an optional judge."""

    def __init__(self, embedder, judge=None, least_support: float = 0.7):
        self.embedder = embedder
        self.judge = judge  # callable (question, answer) -> float in [0, 1], or None
        self.least_support = least_support  # GROUNDED_MIN_SUPPORT

    def relevance_range(self, question: str) -> tuple[float, float]:
        """The cosines of "unrelated" and "on topic" under the embedder of the question's language."""
        part = getattr(self.embedder, "parts", {}).get(language_of(question))
        if part is not None and language_of(question) == KOREAN:
            found = calibration.of_model(part.model_spec)
            if found is not None and found.relevance is not None:
                return found.relevance
        return RELEVANCE_FLOOR, RELEVANCE_CEIL

    def score(self, question: str, answer: str, reference: str | None = None,
              mean_logprob: float | None = None, finish_reason: str | None = None,
              passages: list[str] | None = None) -> Score:
        """Return the quality of one answer and its components (`passages`: the ones it was written from)."""
        return self.score_many([(question, answer, reference, mean_logprob, finish_reason, passages)])[0]

    def score_many(self, items: list[tuple]) -> list[Score]:
        """Score many (question, answer, reference, mean_logprob, finish_reason[, passages]) tuples in one
        encode."""
        positions: dict[str, int] = {}  # each distinct text is encoded once

        def at(text: str) -> int:
            return positions.setdefault(text, len(positions))

        slots = [[at(question), at(answer), at(reference) if reference else None]
                 for question, answer, reference, *_ in items]
        vectors = self.embedder.encode(list(positions)) if positions else np.zeros((0, 1))
        return [self._combine(item, vectors, slot) for item, slot in zip(items, slots)]

    def _combine(self, item, vectors, slot) -> Score:
        question, answer, reference, mean_logprob, finish_reason, passages = (*item, None)[:6]
        found = penalties(question, answer, finish_reason, reference, passages, self.least_support)
        components = self._components(question, answer, mean_logprob, vectors, slot) if answer.strip() else {}
        shown = dict(components)  # what it is made of, and the share its passages support (not weighed)
        if passages is not None and answer.strip():
            shown["groundedness"] = groundedness(answer, passages)
        weight = sum(WEIGHTS[name] for name in components)
        base = sum(WEIGHTS[name] * value for name, value in components.items()) / weight if weight else 0.0
        factor = math.prod(found.values())
        components = {name: round(value, 4) for name, value in {**shown, **found}.items()}
        return Score(quality=round(base * factor, 4), components=components)

    def _components(self, question: str, answer: str, mean_logprob, vectors, slot) -> dict[str, float]:
        """The scores of a non-empty answer: relevance, and reference, confidence and judge when there are."""
        q, a, r = slot
        components = {"relevance": _scale(float(vectors[q] @ vectors[a]), *self.relevance_range(question))}
        if r is not None:
            components["reference"] = _scale(float(vectors[a] @ vectors[r]), REFERENCE_FLOOR, REFERENCE_CEIL)
        if mean_logprob is not None:
            components["confidence"] = math.exp(min(0.0, mean_logprob))
        if self.judge is not None:
            components["judge"] = float(self.judge(question, answer))
        return components


JUDGE_PROMPT = (
    "Rate how well the answer answers the question, from 1 (useless or wrong) to 5 (correct and "
    "complete). Reply with the digit only.\n\nQuestion: {question}\n\nAnswer: {answer}"
)


def llm_judge(backend):
    """Return a judge that asks a loaded generation backend to rate an answer from 1 to 5."""

    def judge(question: str, answer: str) -> float:
        chat = [{"role": "user", "content": JUDGE_PROMPT.format(question=question, answer=answer)}]
        with backend.exclusive():
            [gen] = backend.generate([chat], 4)
        digits = re.findall(r"[1-5]", gen.text)
        return (int(digits[0]) - 1) / 4 if digits else 0.5

    return judge
