"""When `precache up` and `precache worker --gpu all` start an exited process again."""

from cli.up import Restarts


def test_a_process_that_keeps_exiting_as_it_starts_is_given_up_after_the_limit():
    restarts = Restarts(quick_s=3600, limit=3)
    restarts.started("worker")
    decisions = []
    for _ in range(3):
        decisions.append(restarts.allow("worker"))
        restarts.started("worker")
    assert decisions == [True, True, False]


def test_a_process_that_ran_a_while_is_always_started_again():
    restarts = Restarts(quick_s=0.0, limit=1)  # every exit comes after quick_s: none counts against it
    restarts.started("worker")
    assert all(restarts.allow("worker") for _ in range(10))


def test_processes_are_counted_apart():
    restarts = Restarts(quick_s=3600, limit=2)
    for name in ("web", "worker"):
        restarts.started(name)
    assert restarts.allow("web") and restarts.allow("worker")
    assert not restarts.allow("web") and not restarts.allow("worker")
