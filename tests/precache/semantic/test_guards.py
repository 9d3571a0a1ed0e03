"""The guards: near-identical questions that differ in what they ask are vetoed, paraphrases pass."""

import pytest

from precache.semantic.guards import compatible


@pytest.mark.parametrize(
    ("guard", "question", "near_miss", "paraphrase"),
    [
        ("negation", "Can I use my card abroad?", "Can't I use my card abroad?",
         "How can I use my card in another country?"),
        ("number", "How do I prepare for NEET 2017 in 6 months?", "How do I prepare for NEET 2017 in 4 months?",
         "What is the best way to get ready for NEET 2017 in 6 months?"),
        ("date", "Can I get a refund for a purchase made on Monday?",
         "Can I get a refund for a purchase made on Friday?", "Is a refund possible for what I bought on Monday?"),
        ("amount", "Is there a fee for sending $500 abroad?", "Is there a fee for sending €500 abroad?",
         "What does it cost to send $500 to another country?"),
        ("amount", "Why was I charged £5 for a transfer?", "Why was I charged £10 for a transfer?",
         "What is the £5 charge on my transfer?"),
        ("entity", "Where can I buy Guinness Surger cans in the UK?", "Where can I buy Guinness Surger cans in the US?",
         "Which UK shops sell guinness surger cans?"),
        ("question", "Why do you need to check my identity?", "What do I need to verify my identity?",
         "Why is my identity being checked?"),
        ("question", "How come I was charged a fee for my transfer?", "How much is the fee for my transfer?",
         "Why was I charged a fee for my transfer?"),
    ],
)
def test_guard_vetoes_a_near_identical_pair_and_passes_a_paraphrase(guard, question, near_miss, paraphrase):
    assert compatible(question, near_miss) == guard
    assert compatible(paraphrase, question) is None


def test_negation_as_mere_wording_passes():
    assert compatible("My card still hasn't arrived", "When will my new card arrive?") is None


def test_a_reason_asked_of_a_statement_or_of_another_topic_passes():
    # A statement asks for a reason as often as for a way; a "why" and a "how" on other words are the
    # similarity's to judge, not this guard's.
    assert compatible("Why was my card declined?", "My card got declined at the shop") is None
    assert compatible("Why do you need to check my identity?", "How do I order a new card?") is None


@pytest.mark.parametrize(
    ("guard", "question", "near_miss", "paraphrase"),
    [
        ("symbol", "Do you support C?", "Do you support C#?", "Is C supported?"),
        ("symbol", "Do you support C++?", "Do you support C?", "Is C++ supported?"),
        ("symbol", "How do I learn C#?", "How can I start learning C++?", "What is the best way to learn C#?"),
        ("number", "What is -5 °C in Fahrenheit?", "What is 5 °C in Fahrenheit?", "How much is −5 °C in Fahrenheit?"),
        ("number", "Is there a 5% fee on transfers?", "Is there a 5 fee on transfers?",
         "Do transfers have a 5 percent fee?"),
        ("symbol", "Why is x != y true here?", "Why is x = y true here?", "Why is x ≠ y true here?"),
        ("symbol", "Why is x > y in this loop?", "Why is x < y in this loop?", "Why is x > y in the loop?"),
        ("symbol", "Is x >= y allowed?", "Is x > y allowed?", "Is x ≥ y allowed?"),
    ],
)
def test_a_symbol_that_changes_the_meaning_vetoes(guard, question, near_miss, paraphrase):
    assert compatible(question, near_miss) == guard
    assert compatible(near_miss, question) == guard
    assert compatible(paraphrase, question) is None


def test_an_html_tag_is_not_a_comparison():
    assert compatible("How do I center a <div>?", "How do I center a div?") is None
