"""FAQ files (CSV, JSON, JSONL with `question`, optional `answer` and `reference`): read all, or report every bad line.

An `answer` is curated: served as given. A `reference` is not served: generated answers are scored
against it (the quality score's reference agreement).
"""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from precache.app_context import AppContext
from precache.normalize import normalize, question_hash
from precache.store import AnswerStore


class FaqFileError(ValueError):
    """The file has bad entries; `problems` lists them as "line N: what is wrong"."""

    def __init__(self, path: Path, problems: list[str], action: str = "imported"):
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} bad entr{'y' if len(problems) == 1 else 'ies'}; nothing {action}")


@dataclass(frozen=True)
class FaqEntry:
    line: int
    question: str
    answer: str | None
    reference: str | None = None  # scored against, never served


def _records(path: Path):
    """Yield (line number, record) pairs; a record that cannot be parsed is yielded as an error string."""
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        yield 0, f"unknown file type {suffix!r}; use .csv, .json or .jsonl"
        return
    yield from reader(text)


def _csv_records(text: str):
    reader = csv.DictReader(text.splitlines())
    if "question" not in (reader.fieldnames or []):
        yield 1, "the header row has no 'question' column"
        return
    for row in reader:
        yield reader.line_num, row


def _jsonl_records(text: str):
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except ValueError as exc:
                yield number, f"not valid JSON: {exc}"


def _json_records(text: str):
    data = json.loads(text)
    if not isinstance(data, list):
        yield 1, "a .json FAQ file must hold a list of objects"
        return
    yield from enumerate(data, 1)


_READERS = {".csv": _csv_records, ".jsonl": _jsonl_records, ".json": _json_records}


def parse_entry(number: int, record) -> FaqEntry | str:
    """Return the FAQ entry of one record, or a string saying what is wrong with it."""
    if isinstance(record, str):
        return record
    if not isinstance(record, dict):
        return "expected an object with a 'question'"
    question, answer, reference = record.get("question"), record.get("answer"), record.get("reference")
    if not isinstance(question, str) or not question.strip():
        return "'question' is missing or empty"
    if answer is not None and not isinstance(answer, str):
        return "'answer' must be text"
    if reference is not None and not isinstance(reference, str):
        return "'reference' must be text"
    return FaqEntry(number, question.strip(), (answer or "").strip() or None, (reference or "").strip() or None)


def read_entries(path: Path, parse, action: str = "imported") -> list:
    """Return parse(line, record) for every record of the file, or raise FaqFileError listing every bad one.

    `parse` returns the entry, or a string saying what is wrong with the record.
    """
    try:
        records = list(_records(path))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise FaqFileError(path, [f"cannot read the file: {exc}"], action) from None
    entries, problems = _parse_all(records, parse)
    if problems:
        raise FaqFileError(path, problems, action)
    return entries


def _parse_all(records, parse) -> tuple[list, list[str]]:
    """Return (the entries parsed, what is wrong with each of the other records)."""
    entries, problems = [], []
    for number, record in records:
        result = parse(number, record)
        if isinstance(result, str):
            problems.append(f"line {number}: {result}" if number else result)
        else:
            entries.append(result)
    return entries, problems


def read_faq(path: Path) -> list[FaqEntry]:
    """Return every FAQ entry of the file, or raise FaqFileError listing every bad one."""
    return read_entries(path, parse_entry)


def import_faq(ctx: AppContext, entries: list[FaqEntry], progress=lambda: None) -> dict:
    """Store entries as FAQ questions; a given answer becomes a curated answer served as is."""
    counts, answered = {"questions": 0, "curated_answers": 0}, []
    for entry in entries:
        qid, curated = _store_entry(ctx.store, entry)
        counts["questions"] += 1
        counts["curated_answers"] += curated
        if entry.answer is not None:
            answered.append(qid)
        progress()
    if answered and ctx.settings.semantic_enabled:
        from precache.semantic.embedders import embedder_for
        from precache.semantic.store import index_questions

        index_questions(ctx, embedder_for(ctx.settings, threads=None), answered)
    return counts


def _store_entry(store: AnswerStore, entry: FaqEntry) -> tuple[int, bool]:
    """Store one entry; return its question id and whether its answer was stored (a new curated one)."""
    normalized = normalize(entry.question)
    qid = store.ensure_question(entry.question, normalized, question_hash(normalized))
    store.add_faq(qid, entry.reference)
    if entry.answer is None or store.has_curated(qid, entry.answer):
        return qid, False
    store.save_answer(qid, entry.answer, curated=True, quality=1.0, quality_components={"curated": True})
    return qid, True
