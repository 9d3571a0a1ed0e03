"""The work of a generation batch (worker/work.py): the requests, items, groups and outcomes its steps hand on."""

import ast
import dataclasses
import pathlib

import pytest

from precache.models import Question
from worker.backends import Generation, GenerationTimeout
from worker.work import (AlreadyDone, Failed, Generated, Group, Item, JobRequest, LeftForReview, NoQuestion,
                         Preempted, Slow)

WORKER = pathlib.Path(__file__).parents[2] / "worker"
STEPS = {"worker.plan", "worker.batch", "worker.settle", "worker.generation"}


def _item(index: int = 3) -> Item:
    return Item(index, JobRequest(7, "job-7"), Question(id=7, text="What is an API?", qhash="h7"), ctx=None)


def _worker_imports(module: str) -> set[str]:
    tree = ast.parse((WORKER / f"{module}.py").read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}


def test_a_job_request_is_built_from_a_task_message_s_arguments():
    # worker/tasks.py passes the message's positional arguments, question id then job id.
    request = JobRequest(12, "job-12")
    assert (request.question_id, request.job_id) == (12, "job-12")
    assert (request.kind, request.request_id, request.tenant) == ("quick", "-", "")


@pytest.mark.parametrize("outcome", [
    Generated(_item(), Generation("Paris.", 10, 2, -0.1, "stop"), "quick", 120.0),
    Failed(_item(), RuntimeError("no")),
    Slow(_item(), GenerationTimeout("too slow"), 2.0),
    Preempted(_item()),
    AlreadyDone(_item(), job_finished=False),
    LeftForReview(_item(), "left for review"),
], ids=lambda outcome: type(outcome).__name__)
def test_every_outcome_says_where_its_job_is_in_the_batch(outcome):
    assert outcome.index == 3 and outcome.item.request.job_id == "job-7"


def test_a_job_without_a_question_says_where_it_is_in_the_batch_too():
    assert NoQuestion(5, 99).index == 5


def test_groups_of_the_same_settings_are_one_group():
    groups = {Group("quick"): ["a"], Group("detailed", sampled=True): ["b"]}
    assert groups[Group("quick", sampled=False, alone=False)] == ["a"]
    assert groups[Group("detailed", True)] == ["b"]
    assert Group("quick", alone=True) not in groups  # a question the worker died on is generated apart


def test_planned_work_is_replaced_never_changed_in_place():
    item = _item()
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.gated = 1
    alone = dataclasses.replace(item, alone=True)
    assert (item.alone, alone.alone, alone.index) == (False, True, 3)


def test_the_work_imports_no_step_of_the_generation():
    assert not _worker_imports("work") & STEPS


@pytest.mark.parametrize("step", ["plan", "batch", "settle"])
def test_the_steps_of_a_batch_meet_only_in_its_entry(step):
    # worker/generation.py plans, runs and settles; each step only shares the types of worker/work.py.
    assert not _worker_imports(step) & STEPS
    assert f"worker.{step}" in _worker_imports("generation")
