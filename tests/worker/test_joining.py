"""Quick messages offered to the running quick batch (worker/joining.py, worker/tasks.py)."""

from worker import joining, tasks
from worker.joining import Joining


def test_messages_are_offered_only_while_a_batch_that_takes_them_runs():
    room = Joining()
    assert room.offer(["a"]) is False  # none runs: the caller hands them to the pool
    room.open()
    assert room.offer(["a", "b"]) and room.offer(["c"])
    assert room.take(2) == ["a", "b"]
    assert room.close() == ["c"]  # not taken: handed to the pool as a batch of their own
    assert room.offer(["d"]) is False


def test_the_quick_task_offers_its_next_batch_to_the_running_one_instead_of_queueing_it():
    joining.quick.open()
    try:
        waiting = tasks._waiting[tasks.GENERATE_QUICK]
        assert tasks.generate_quick_answer.flush(["message"]) is None
        assert tasks._waiting[tasks.GENERATE_QUICK] == waiting  # not counted as waiting for the pool
        assert joining.quick.take(8) == ["message"]
    finally:
        joining.quick.close()


def test_an_offer_hurries_the_running_batch_and_an_offer_between_batches_does_not():
    hurried = []
    room = Joining()
    room.open(hurry=lambda: hurried.append(True))
    assert room.offer(["a"]) and hurried == [True]  # its backend may end the step under way for it
    room.close()
    assert room.offer(["b"]) is False and hurried == [True]
