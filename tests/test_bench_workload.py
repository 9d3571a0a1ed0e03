"""The workload bench's scoring: which hits count as wrong (the figure the issue's goal is judged by)."""

from bench.semantic_path import qhash
from bench.workload import wrong

FAQ = [{"question": "How do I reset my password?", "rephr": ["forgot my password", "password reset help"]},
       {"question": "How do I delete my account?", "rephr": ["remove my account"]}]
ENTRY_OF = {qhash(t): i for i, e in enumerate(FAQ) for t in [e["question"], *e["rephr"]]}
GOLD = "Use the reset link on the sign-in page."


def ask(text, source, answer, matched=None, gold=GOLD, status=200):
    return {"text": text, "source": source, "answer": answer, "matched": matched, "gold": gold, "status": status}


def test_gold_answer_is_right():
    assert not wrong(ask("forgot my password", "semantic", GOLD, "How do I reset my password?"), ENTRY_OF)


def test_worker_answer_for_the_asked_string_or_its_entry_is_right():
    assert not wrong(ask("forgot my password", "exact", "generated text", "forgot my password"), ENTRY_OF)
    assert not wrong(ask("forgot my password", "semantic", "generated text", "password reset help"), ENTRY_OF)


def test_another_entrys_answer_is_wrong():
    assert wrong(ask("forgot my password", "semantic", "Go to settings.", "remove my account"), ENTRY_OF)
    assert wrong(ask("forgot my password", "generated", "Go to settings.", "remove my account"), ENTRY_OF)


def test_out_of_scope_hit_is_wrong_unless_its_own_answer():
    assert wrong(ask("best pizza in town?", "semantic", GOLD, "How do I reset my password?", gold=None), ENTRY_OF)
    assert not wrong(ask("best pizza in town?", "exact", "generated", "best pizza in town?", gold=None), ENTRY_OF)


def test_templates_answer_greetings_only():
    assert not wrong(ask("hello", "template", "Hi! Ask me anything.", gold=None), ENTRY_OF)
    assert wrong(ask("forgot my password", "template", "Hi! Ask me anything."), ENTRY_OF)


def test_fallbacks_are_never_wrong():
    assert not wrong(ask("forgot my password", "fallback", "Working on it.", status=202), ENTRY_OF)
