"""Which chat messages need the conversation, and what stands in for a rewrite the model got wrong."""

import pytest

from precache.conversation import context_hash, needs_rewrite, rewrite_chat, standalone_from


def turns(*texts: str) -> list[dict]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


RESET = ("How do I reset my password?", "Open Settings, then Reset password.")


@pytest.mark.parametrize("message", ["How long does that take?", "and for students?", "What about refunds?",
                                     "Why?", "Can I do it from my phone?", "Are they free?"])
def test_a_follow_up_that_points_back_needs_a_rewrite(message):
    assert needs_rewrite(turns(*RESET, message))


@pytest.mark.parametrize("message", ["How do I change my email address?", "What is the capital of France?"])
def test_a_message_that_stands_alone_is_not_rewritten(message):
    assert not needs_rewrite(turns(*RESET, message))


def test_a_first_message_is_never_rewritten_however_it_reads():
    assert not needs_rewrite([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why is that?"}])


def test_the_rewrite_cache_key_follows_the_conversation():
    a = context_hash(turns(*RESET, "How long does that take?"))
    assert a == context_hash([{"role": "system", "content": "any"}, *turns(*RESET, "How long does that take?")])
    assert a != context_hash(turns("How do I close my account?", "Ask support.", "How long does that take?"))


def test_the_rewrite_prompt_holds_the_conversation_and_the_message():
    prompt = rewrite_chat(turns(*RESET, "How long does that take?"))[-1]["content"]
    assert "User: How do I reset my password?" in prompt and prompt.endswith("Last question: How long does that take?")


@pytest.mark.parametrize("generated, expected", [
    ("How long does it take to reset my password?", "How long does it take to reset my password?"),
    ("Standalone question: \"How long does a password reset take?\"\nmore", "How long does a password reset take?"),
    ("", "How do I reset my password? How long does that take?"),  # no rewrite came
    ("How long does that take?", "How do I reset my password? How long does that take?"),  # unchanged
    ("How do I reset my password?", "How do I reset my password? How long does that take?"),  # lost "long", "take"
])
def test_a_rewrite_is_used_only_when_it_keeps_what_the_message_asks(generated, expected):
    assert standalone_from(generated, turns(*RESET, "How long does that take?")) == expected
