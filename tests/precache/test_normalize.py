import pytest

from precache.normalize import normalize, question_hash


@pytest.mark.parametrize("variant", ["how do I reset my password?", "  How do I RESET my   password ",
                                     "How do I reset my password!!", "ＨＯＷ do I reset my password"])
def test_case_spacing_and_punctuation_variants_match(variant):
    assert normalize(variant) == "how do i reset my password"


@pytest.mark.parametrize("a, b", [("price of 3.5 kg", "price of 35 kg"), ("can't log in", "can t log in"),
                                  ("Is it 10?", "Is it 100?")])
def test_different_questions_stay_different(a, b):
    assert question_hash(normalize(a)) != question_hash(normalize(b))


def test_only_punctuation_normalizes_to_empty():
    assert normalize(" ?!... ") == ""
