"""POST /v1/ask: one asker's answer is served only for questions that mean the same, symbols and all."""

import pytest

from precache.faq import FaqEntry, import_faq
from precache.normalize import normalize, question_hash

CSHARP = "Yes, C# is supported from version 10."


def _asked(client, question: str) -> dict:
    return client.post("/v1/ask", json={"question": question}).json


def test_an_answer_to_c_sharp_is_not_served_for_c(app, client):
    ctx = app.extensions["precache"]
    n = normalize("Do you support C#?")
    saved = ctx.store.save_answer(ctx.store.ensure_question("Do you support C#?", n, question_hash(n)), CSHARP,
                                  model="m", quality=0.8)
    for other in ["Do you support C?", "Do you support C++?"]:
        body = _asked(client, other)
        assert body.get("answer_id") != saved["answer_id"] and body["source"] not in {"exact", "semantic"}, body
    for same in ["do you support C#", "Do you support C#\u200b?", "\u202eDo you support C#?"]:
        body = _asked(client, same)
        assert (body["source"], body["answer_id"]) == ("exact", saved["answer_id"]), body


@pytest.mark.model
@pytest.mark.parametrize("stored, asked", [
    ("Do you support C#?", "Do you support C?"), ("Do you support C#?", "Do you support C++?"),
    ("What is -5 °C in Fahrenheit?", "What is 5 °C in Fahrenheit?"),
    ("Is there a 5% fee on transfers?", "Is there a 5 fee on transfers?"),
    ("Why is x != y true here?", "Why is x = y true here?"),
    ("Why is x > y in this loop?", "Why is x < y in this loop?"),
])
def test_nor_does_the_semantic_tier(app, client, stored, asked):
    import_faq(app.extensions["precache"], [FaqEntry(1, stored, "The stored answer.")])
    body = _asked(client, asked)
    assert body.get("answer") != "The stored answer." and body["source"] not in {"exact", "semantic"}, body
    assert _asked(client, stored)["source"] == "exact"


@pytest.mark.model
def test_a_paraphrase_with_the_same_symbols_is_still_served(app, client):
    import_faq(app.extensions["precache"], [FaqEntry(1, "Do you support C#?", CSHARP)])
    assert _asked(client, "Is C# supported?")["answer"] == CSHARP
