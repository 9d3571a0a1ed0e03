"""The labelled data sets read for calibration (cli/datasets.py): each file becomes a cache and its askers."""

import json

from cli.datasets import load_task, question_texts
from tests.cli.test_calibrate import DATA, needs_data


@needs_data
def test_loaders_build_cache_and_askers():
    faq = load_task(DATA / "stackfaq" / "stackExchange-FAQ.json")
    assert len(faq.cache) == 125 and len(faq.askers) > 1000 and "*" not in {t for t, _ in faq.askers}
    intents = load_task(DATA / "banking77" / "train.csv", per_intent=3)
    assert len(intents.cache) == 77 * 3
    pairs = load_task(DATA / "gptcache" / "qqp_balanced_4000.jsonl")
    assert sum(k is None for _, k in pairs.askers) == 2000


def test_each_format_is_read_into_a_cache_and_its_askers(tmp_path):
    csv_file = tmp_path / "intents.csv"
    csv_file.write_text("text,category\nreset my card,card\nmy card is lost,card\nhello there,oos\n"
                        "what is my balance,balance\n", encoding="utf-8")
    intents = load_task(csv_file, per_intent=1)
    assert len(intents.cache) == 2 and {k for _, k in intents.cache} == {"card", "balance"}
    assert ("hello there", None) in intents.askers and ("card" in {k for _, k in intents.askers})
    faq_file = tmp_path / "faq.json"
    faq_file.write_text(json.dumps({"root": {"qapair": [
        {"question": "How do I reset my password?", "rephr": ["forgot my password", "*", ""]},
        {"question": "Where is my order?", "rephr": ["order not here"]}]}}), encoding="utf-8")
    faq = load_task(faq_file)
    assert faq.cache == [("How do I reset my password?", "0"), ("Where is my order?", "1")]
    assert faq.askers == [("forgot my password", "0"), ("order not here", "1")]  # "*" and "" are no phrasings
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text('{"text_a": "a?", "text_b": "A?", "label": 1}\n{"text_a": "a?", "text_b": "b?", "label": 0}\n',
                          encoding="utf-8")
    pairs = load_task(pairs_file)
    assert pairs.cache == [("a?", "0")] and pairs.askers == [("A?", "0"), ("b?", None)]
    mock_file = tmp_path / "mock.json"
    mock_file.write_text(json.dumps([{"origin": "x?", "similar": "X?"}]), encoding="utf-8")
    assert load_task(mock_file).askers == [("X?", "0")]
    assert question_texts(faq_file) == ["How do I reset my password?", "Where is my order?", "forgot my password",
                                        "order not here"]
