"""Guards of the semantic tier: cheap lexical checks that veto the classic embedding false hits.

Embeddings put "Can I use my card abroad?" next to "Why can't I use my card abroad?", and
"... in 2016" next to "... in 2015". Each guard compares one detail an answer depends on
(negation, numbers, dates, amounts, named entities, a symbol that changes the meaning, a reason
asked for or a way) and names itself when the two differ.
"""

import re
import unicodedata
from dataclasses import dataclass

from precache.language import KOREAN, language_of
from precache.semantic import korean as korean_guards

# A word, or a currency sign. A number keeps its minus sign (-5 °C) and a percent sign (5%); a name keeps
# the # or ++ that makes it another name (C#, C++).
_WORD = re.compile(r"[$€£¥₹]|(?:(?<![^\W_])[-−](?=\d))?[^\W_]+(?:['’.,-][^\W_]+)*(?:\s?%|#|\+\+)?")
_PERCENT = re.compile(r"(\d)\s*(?:percent|per cent|pct)\b", re.IGNORECASE)
# Comparisons: x != y is not x = y, x > y is not x < y. An HTML tag (<div>) is a name, not two of them.
_OPERATOR = re.compile(r"!=|[<>=]=?|[≠≤≥]")
_TAG = re.compile(r"</?[a-zA-Z][\w-]*/?>")
_SAME_OPERATOR = {"≠": "!=", "≤": "<=", "≥": ">="}
_SENTENCE_END = re.compile(r"[.?!:;\n\"“(\[]$")
NEGATIONS = frozenset(
    ["not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor", "without", "cannot", "cant", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont", "wouldnt", "shouldnt", "couldnt", "hasnt", "havent", "hadnt", "mustnt", "neednt", "aint", "unable"]
)
# "one", "first", "second" and "once" are left out: they are pronouns, sequence and time words as often as numbers.
NUMBER_WORDS = {w: str(i) for i, w in enumerate(["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve"], 2)}
NUMBER_WORDS |= {"twice": "2", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
                 "thousand": "1000", "million": "1000000", "billion": "1000000000"}
DATE_WORDS = frozenset(
    ["january", "february", "april", "june", "july", "august", "september", "october", "november", "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today", "tomorrow", "yesterday", "tonight", "weekend"]
)
NEAR = 0.5  # word overlap above which two questions count as near-identical
# Question words that ask for a way, a thing, a place or a time rather than a reason.
WAY_WORDS = frozenset(["how", "what", "whats", "where", "when", "which", "who"])
REASON_NEAR = 0.3  # word overlap above which a "why" and a "how/what/..." question on it differ only in that
CURRENCIES = {"$": "usd", "€": "eur", "£": "gbp", "¥": "jpy", "₹": "inr", "dollar": "usd", "euro": "eur",
              "pound": "gbp", "yen": "jpy", "rupee": "inr", "usd": "usd", "eur": "eur", "gbp": "gbp",
              "inr": "inr", "jpy": "jpy", "aud": "aud", "cad": "cad", "chf": "chf", "cny": "cny"}


def fold(word: str) -> str:
    """Return a word case-folded, without apostrophes, grouping separators or a plural/ordinal ending."""
    word = word.casefold().replace("'", "").replace("’", "")
    if any(ch.isdigit() for ch in word):
        word = re.sub(r"\s", "", word.replace(",", "").replace("−", "-"))
        word = re.sub(r"(?<=\d)(st|nd|rd|th|s)$", "", word)
        return re.sub(r"^(\d+)k$", r"\g<1>000", word)
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


@dataclass(frozen=True)
class Details:
    """The details of a question that its answer depends on."""

    words: frozenset[str]
    negated: bool
    numbers: frozenset[str]
    dates: frozenset[str]
    currencies: frozenset[str]
    entities: frozenset[str]
    squashed: str
    marks: frozenset[str] = frozenset()  # names with # or ++ (c#, c++) and comparisons (!=, <, >=)
    reason: bool = False  # asks why ("why", "how come")
    way: bool = False  # asks how, what, where, when, which or who
    korean: korean_guards.KoreanDetails | None = None  # a Korean question's details, read through Korean grammar


def _is_entity(word: str, sentence_start: bool) -> bool:
    # Proper nouns and acronyms: capitalised inside a sentence, all caps, or mixed case (iPhone, GitHub).
    letters = [ch for ch in word if ch.isalpha()]
    if len(letters) < 2 or not any(ch.isupper() for ch in letters):
        return False
    inner_upper = any(ch.isupper() for ch in letters[1:])
    return inner_upper or (not sentence_start and word != "I")


def details(text: str) -> Details:
    """Extract the words, negation, numbers, dates, currencies, entities and marks of a question."""
    text = _PERCENT.sub(r"\1%", unicodedata.normalize("NFKC", text))
    found = list(_WORD.finditer(text))
    raw = [m.group() for m in found]
    folded = [fold(w) for w in raw]
    starts = [not text[: m.start()].strip() or bool(_SENTENCE_END.search(text[: m.start()].rstrip())) for m in found]
    numbers = {f for f in folded if any(ch.isdigit() for ch in f)} | {NUMBER_WORDS[f] for f in folded if f in NUMBER_WORDS}
    return Details(
        words=frozenset(folded),
        negated=any(f in NEGATIONS or re.search(r"n['’]t$", w.casefold()) for f, w in zip(folded, raw)),
        numbers=frozenset(numbers),
        dates=frozenset(f for f in folded if f in DATE_WORDS),
        currencies=frozenset(CURRENCIES[f] for f in folded if f in CURRENCIES),
        entities=frozenset(f for w, f, s in zip(raw, folded, starts) if _is_entity(w, s) and f not in numbers),
        squashed="".join(folded),
        marks=frozenset([f for f in folded if f.endswith(("#", "++"))]
                        + [_SAME_OPERATOR.get(op, op) for op in _OPERATOR.findall(_TAG.sub(" ", text))]),
        reason="why" in folded or any(a == "how" and b == "come" for a, b in zip(folded, folded[1:])),
        way=bool(WAY_WORDS.intersection(folded)),
        korean=korean_guards.details(text) if language_of(text) == KOREAN else None,
    )


def _facts_differ(q: Details, c: Details) -> str | None:
    """The guard of the amounts, numbers or dates both questions name and that differ, or None."""
    if q.currencies and c.currencies and q.currencies != c.currencies:
        return "amount"
    if q.numbers and c.numbers and q.numbers != c.numbers:
        return "amount" if q.currencies or c.currencies else "number"
    if q.dates and c.dates and q.dates != c.dates:
        return "date"
    return None


def _unmatched_entities(mine: Details, other: Details) -> set[str]:
    # An entity is matched by the same word, or (when long enough) inside the other's run-together
    # text, so "GitHub" matches "git hub" and "Facebook" matches "facebook".
    return {e for e in mine.entities if e not in other.words and (len(e) < 4 or e not in other.squashed)}


def overlap(a: Details, b: Details) -> float:
    """Return the Jaccard overlap of two questions' words, negations left out."""
    x, y = a.words - NEGATIONS, b.words - NEGATIONS
    return len(x & y) / max(1, len(x | y))


def compatible(question: str | Details, candidate: str | Details, near: float = NEAR) -> str | None:
    """Return the name of the guard that vetoes serving `candidate`'s answer for `question`, or None."""
    q = question if isinstance(question, Details) else details(question)
    c = candidate if isinstance(candidate, Details) else details(candidate)
    if veto := _facts_differ(q, c):
        return veto
    if q.korean is not None and c.korean is not None and (veto := korean_guards.veto(q.korean, c.korean)):
        return veto
    # C# and C, x != y and x = y: a symbol the embeddings barely see names another thing. Two different
    # sets of marks veto like numbers; a mark on one side only, when the rest is near-identical.
    if q.marks != c.marks and ((q.marks and c.marks) or overlap(q, c) >= near):
        return "symbol"
    # "Why do you need to check my identity?" wants a reason, "What do I need to verify my identity?" a
    # list: the same words around another question word ask for another answer. A statement ("I can't
    # verify my identity") is left to the similarity: it asks for either as often.
    if q.reason != c.reason and (c if q.reason else q).way and overlap(q, c) >= REASON_NEAR:
        return "question"
    # Negation and names are often only wording ("my card hasn't come" ~ "when will my card arrive");
    # they decide the answer when they are the one difference between two near-identical questions.
    if (q.negated != c.negated or (_unmatched_entities(q, c) and _unmatched_entities(c, q))) and overlap(q, c) >= near:
        return "negation" if q.negated != c.negated else "entity"
    return None
