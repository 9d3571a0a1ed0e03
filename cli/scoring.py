"""Scoring commands: score answers as the worker does; calibrate the semantic tier on labelled data."""

import json
import sys
from pathlib import Path

import click

from cli.common import read_or_exit, settings_or_exit


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.File("w"), default="-", show_default=True, help="Where to write JSONL.")
@click.option("--judge", is_flag=True, help="Also have the configured LLM rate each answer (loads the model).")
def score(file, output, judge):
    """Score answers: JSONL lines {question, answer, reference?} in, the same with quality and components out."""
    from tqdm import tqdm

    from precache.semantic.embedders import embedder_for
    from worker.quality import Scorer

    items = read_or_exit(read_items, file)
    s = settings_or_exit()
    scorer = Scorer(embedder_for(s, threads=None), judge=_judge(s) if judge else None)
    with tqdm(total=len(items), desc="scoring", unit="answer", file=sys.stderr) as bar:
        for start in range(0, len(items), 64):
            chunk = items[start:start + 64]
            for item, result in zip(chunk, scorer.score_many([item_tuple(i) for i in chunk])):
                output.write(json.dumps({**item, "quality": result.quality, "components": result.components}) + "\n")
            bar.update(len(chunk))


def _judge(settings):
    from worker.quality import llm_judge
    from worker.backends import BackendError, load_backend

    try:
        return llm_judge(load_backend(settings))
    except BackendError as exc:
        raise click.ClickException(f"cannot load the judge model: {exc}") from None


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--target", type=float, default=0.005, show_default=True, help="Wrong-hit rate to meet (0.005 = 0.5 %).")
@click.option("--askers", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Intent CSV whose queries ask (e.g. test.csv); default: the uncached rows of FILE.")
@click.option("--per-intent", type=int, default=3, show_default=True, help="Phrasings cached per intent (CSV).")
@click.option("--oos", type=click.Path(exists=True, dir_okay=False, path_type=Path), multiple=True,
              help="Another data set whose questions ask, out of scope, with each intent CSV (repeatable).")
@click.option("--oos-limit", type=int, default=1000, show_default=True, help="Out-of-scope asks drawn from --oos.")
@click.option("--limit", type=int, default=None, help="Ask at most N questions per file (a seeded sample).")
@click.option("--unanswered", type=click.FloatRange(0, 0.9), default=0.25, show_default=True,
              help="Share of an intent CSV's intents also left out of the cache, their queries asking as out of "
              "scope (questions near the cached ones that the cache cannot answer); 0 skips that run.")
@click.option("--seed", type=int, default=0, show_default=True)
def calibrate(files, target, askers, per_intent, oos, oos_limit, limit, unanswered, seed):
    """Print the semantic tier's hit / wrong-hit curve on labelled FILES and the threshold meeting --target."""
    from cli.calibrate import run
    from precache.semantic.embedders import embedder_for

    s = settings_or_exit()
    run(files, s, embedder_for(s, threads=None), echo=click.echo, target=target, askers=askers,
        per_intent=per_intent, oos=oos, oos_limit=oos_limit, limit=limit, seed=seed, unanswered=unanswered)


def _item(number: int, record) -> dict | str:
    """Check one line of a file to score: {"question", "answer", "reference"?, "mean_logprob"?, "finish_reason"?}."""
    if isinstance(record, str):
        return record
    if not isinstance(record, dict):
        return "expected an object with 'question' and 'answer'"
    question, answer = record.get("question"), record.get("answer")
    if not isinstance(question, str) or not question.strip():
        return "'question' is missing or empty"
    if not isinstance(answer, str):
        return "'answer' is missing or not text (an empty answer is \"\")"
    return _optional_problem(record) or record


def _optional_problem(record: dict) -> str | None:
    """What is wrong with the optional fields of a line to score, or None."""
    reference = record.get("reference")
    if reference is not None and not isinstance(reference, str):
        return "'reference' must be text"
    logprob = record.get("mean_logprob")
    if logprob is not None and (isinstance(logprob, bool) or not isinstance(logprob, (int, float)) or logprob > 0):
        return "'mean_logprob' must be a number <= 0"
    reason = record.get("finish_reason")
    if reason is not None and not isinstance(reason, str):
        return "'finish_reason' must be text such as \"stop\" or \"length\""
    return None


def read_items(path) -> list[dict]:
    """Return every line of a file to score, or raise FaqFileError listing every bad one."""
    from precache.faq import read_entries

    return read_entries(path, _item, action="scored")


def item_tuple(item: dict) -> tuple:
    """Return the tuple `Scorer.score_many` takes for one checked line."""
    return (item["question"], item["answer"], item.get("reference") or None, item.get("mean_logprob"),
            item.get("finish_reason"))


COMMANDS = (score, calibrate)
