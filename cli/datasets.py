"""Labelled data for calibration, read into one shape: cached questions and askers, each with an answer key.

Formats (../shared/data/README.md): an intent CSV (`text,category`, banking77), a StackExchange FAQ
JSON (`root.qapair[]` with `question` and `rephr[]`), GPTCache's mock data (`[{origin, similar}]`),
question pairs JSONL (`{text_a, text_b, label}`) and paraphrase groups JSONL (StyleKQC: `{group, topic,
formal[], informal[]}`). An asker's key is the key of the cached
question whose answer is right for it, or None when no cached answer is (out of scope).
"""

import csv
import json
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

OUT_OF_SCOPE = {"oos", "out_of_scope", "out-of-scope"}


@dataclass
class Task:
    name: str
    cache: list[tuple[str, str]]
    askers: list[tuple[str, str | None]] = field(default_factory=list)


def intent_rows(path: Path) -> list[tuple[str, str]]:
    """Return every (text, intent) row of an intent CSV."""
    with path.open(encoding="utf-8", newline="") as f:
        return [(row["text"].strip(), row["category"]) for row in csv.DictReader(f) if row["text"].strip()]


def intent_task(path: Path, askers: Path | None, per_intent: int, seed: int, unanswered: float = 0.0) -> Task:
    """Cache `per_intent` random phrasings of each intent; the others (or the askers file) ask.

    A share `unanswered` of the intents (seeded) gets no phrasing in the cache: its queries ask as out
    of scope, the near-domain questions a real cache has no answer for.
    """
    groups, rng = defaultdict(list), random.Random(seed)
    for text, intent in intent_rows(path):
        groups[intent].append(text)
    intents = sorted(k for k in groups if k not in OUT_OF_SCOPE)
    dropped = set(random.Random(seed + 1).sample(intents, round(unanswered * len(intents))))
    cache, rest = _split(groups, dropped, per_intent, rng)
    if askers is not None:
        rest = [(t, None if k in OUT_OF_SCOPE or k in dropped else k) for t, k in intent_rows(askers)]
    name = f"{path.name} ({per_intent} per intent cached" + (f", {len(dropped)} intents unanswered)" if dropped else ")")
    return Task(name, cache, rest)


def _split(groups: dict[str, list[str]], dropped: set[str], per_intent: int, rng: random.Random) -> tuple[list, list]:
    """Return (cached phrasings, asking phrasings) as (text, intent) pairs; the rest ask as out of scope."""
    cache, rest = [], []
    for intent in sorted(groups):
        texts = groups[intent]
        if intent in OUT_OF_SCOPE:
            rest += [(t, None) for t in texts]
            continue
        picked = set(rng.sample(range(len(texts)), min(per_intent, len(texts))))  # drawn even if dropped:
        if intent in dropped:  # the other intents cache the same phrasings as with none dropped
            rest += [(t, None) for t in texts]
            continue
        cache += [(texts[i], intent) for i in sorted(picked)]
        rest += [(t, intent) for i, t in enumerate(texts) if i not in picked]
    return cache, rest


def _is_phrase(text) -> bool:
    return isinstance(text, str) and text.strip() not in ("", "*")


def faq_task(path: Path, data, seed: int = 0, unanswered: float = 0.0) -> Task:
    """Cache every FAQ question; its user paraphrases ask.

    A share `unanswered` of the entries (seeded) is left out of the cache: their paraphrases ask as
    out of scope, questions on the FAQ's own topic that it has no entry for.
    """
    pairs = data["root"]["qapair"]
    dropped = {str(i) for i in random.Random(seed + 1).sample(range(len(pairs)), round(unanswered * len(pairs)))}
    cache = [(p["question"], str(i)) for i, p in enumerate(pairs) if str(i) not in dropped]
    askers = [(r.strip(), None if str(i) in dropped else str(i))
              for i, p in enumerate(pairs) for r in p.get("rephr") or [] if _is_phrase(r)]
    name = f"{path.name} (FAQ questions cached" + (f", {len(dropped)} entries unanswered" if dropped else "")
    return Task(name + ", paraphrases ask)", cache, askers)


def mock_task(path: Path, data) -> Task:
    """GPTCache's benchmark: cache every origin with its index as answer, ask every similar."""
    cache = [(r["origin"], str(i)) for i, r in enumerate(data)]
    return Task(f"{path.name} (origins cached, similars ask)", cache, [(r["similar"], str(i)) for i, r in enumerate(data)])


def pairs_task(path: Path) -> Task:
    """Cache every first question; a duplicate second question should hit it, a non-duplicate nothing."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    keys = {}
    for r in rows:
        keys.setdefault(r["text_a"], str(len(keys)))
    askers = [(r["text_b"], keys[r["text_a"]] if int(r["label"]) == 1 else None) for r in rows]
    return Task(f"{path.name} (first questions cached, second ones ask)", [(t, k) for t, k in keys.items()], askers)


def group_rows(path: Path) -> list[dict]:
    """Return the paraphrase groups of a groups JSONL: {group, topic, phrasings}."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"group": r["group"], "topic": r.get("topic"), "phrasings": r["formal"] + r["informal"]} for r in rows]


def groups_task(path: Path, seed: int = 0, groups: list[dict] | None = None, name: str = "") -> Task:
    """Half the paraphrase groups cached, one phrasing each (curated): their other phrasings ask for it; every
    phrasing of the other half asks as out of scope (the protocol of ../shared/data/korean/README.md).

    The cached phrasing is the group's first (StyleKQC: its first formal one), as an FAQ writes its entry.
    """
    groups = list(groups if groups is not None else group_rows(path))
    rng = random.Random(seed)
    rng.shuffle(groups)
    cache, askers = [], []
    for i, group in enumerate(groups):
        phrasings = list(group["phrasings"])
        if i % 2:
            askers += [(t, None) for t in phrasings]
            continue
        first = 0
        cache.append((phrasings[first], group["group"]))
        askers += [(t, group["group"]) for j, t in enumerate(phrasings) if j != first]
    return Task(name or f"{path.name} ({len(cache)} of {len(groups)} groups cached)", cache, askers)


def kind_of(path: Path) -> str:
    """Return which of the supported formats a labelled file is: intent, faq, mock, pairs or groups."""
    if path.suffix == ".csv":
        return "intent"
    if path.suffix == ".jsonl":
        first = path.read_text(encoding="utf-8").lstrip().split("\n", 1)[0]
        return "groups" if '"formal"' in first else "pairs"
    return "faq" if isinstance(json.loads(path.read_text(encoding="utf-8")), dict) else "mock"


def load_task(path: Path, askers: Path | None = None, per_intent: int = 3, seed: int = 0, limit=None,
              unanswered: float = 0.0) -> Task:
    """Read a labelled file of any supported format; keep at most `limit` askers (a seeded sample).

    `unanswered` leaves a share of an intent CSV's intents or of an FAQ's entries out of the cache.
    GPTCache's mock data and question pairs have none: their cached questions restate one another
    (the same fact, worded twice), so the nearest remaining one is often still a right answer.
    """
    task = _read_task(path, askers, per_intent, seed, unanswered)
    if limit is not None and len(task.askers) > limit:
        task.askers = random.Random(seed).sample(task.askers, limit)
    return task


def _read_task(path: Path, askers: Path | None, per_intent: int, seed: int, unanswered: float) -> Task:
    """The task of a file, by its format: an intent CSV, question pairs (.jsonl), an FAQ or GPTCache's mock data."""
    if path.suffix == ".csv":
        return intent_task(path, askers, per_intent, seed, unanswered)
    if path.suffix == ".jsonl":
        return groups_task(path, seed) if kind_of(path) == "groups" else pairs_task(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    return faq_task(path, data, seed, unanswered) if isinstance(data, dict) else mock_task(path, data)


def question_texts(path: Path) -> list[str]:
    """Return every question of a file, to ask as out of scope of another data set."""
    task = load_task(Path(path))
    return list(dict.fromkeys([t for t, _ in task.cache] + [t for t, _ in task.askers]))
