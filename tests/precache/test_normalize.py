import unicodedata

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


@pytest.mark.parametrize("a, b", [
    ("Do you support C#?", "Do you support C?"), ("Do you support C++?", "Do you support C?"),
    ("Is -5 °C cold?", "Is 5 °C cold?"), ("Is −5 °C cold?", "Is 5 °C cold?"),
    ("Is there a 5% fee?", "Is there a 5 fee?"), ("Why is x != y?", "Why is x = y?"),
    ("Why is x > y?", "Why is x < y?"), ("Is x <= y?", "Is x < y?"), ("Is it .5 or 5?", "Is it 5 or 5?"),
    ("What is 1 m² in ft?", "What is 1 m2 in ft?"), ("What is x²³?", "What is x²3?"),
    ("Can I pay $5?", "Can I pay €5?"), ("Is R & D taxed?", "Is R D taxed?"), ("Who is @admin?", "Who is admin?"),
    ("What is km / h?", "What is km h?"), ("What is [] in Python?", "What is () in Python?"),
])
def test_symbols_that_change_the_meaning_keep_questions_apart(a, b):
    assert normalize(a) != normalize(b)


@pytest.mark.parametrize("a, b", [
    ("How do I reset my password?", "how do i reset my password"),
    ('"Reset my password," he said.', "reset my password he said"),
    ("Why don’t I get the code?", "Why don't I get the code?"), ("Is x ≠ y?", "Is x != y?"),
    ("Is −5 °C cold?", "Is -5 °C cold?"), ("What is 1 m²?", "What is 1 m^2?"),
    ("How much is ½ cup?", "How much is 1/2 cup?"), ("What is H₂O?", "What is H_2O?"),
    ("Ｃ＃ or Ｃ++?", "c# or c++"),
])
def test_spellings_of_one_question_share_a_key(a, b):
    assert normalize(a) == normalize(b)


@pytest.mark.parametrize("invisible", ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u202a", "\u202b", "\u202c",
                                       "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f",
                                       "\u061c", "\u00ad", "\ufe0f", "\U000e0041", "\x00"])
def test_zero_width_and_bidi_characters_are_removed(invisible):
    assert normalize(f"How do I reset my pass{invisible}word?") == "how do i reset my password"
    assert normalize(f"{invisible}C{invisible}#{invisible}") == "c#"  # removed before the punctuation is read


def test_korean_keeps_its_syllables_and_meaning():
    question = "비밀번호를 어떻게 재설정하나요?"
    assert normalize(question) == "비밀번호를어떻게재설정하나요"
    assert normalize(unicodedata.normalize("NFD", question)) == normalize(question)  # jamo compose
    assert normalize("비밀\u200b번호를\u3164 어떻게 재설정하나요？") == normalize(question)  # zero-width, filler, full width
    assert normalize("비밀번호를 어떻게 변경하나요?") != normalize(question)  # change, not reset


def test_korean_spacing_variants_share_a_key():
    assert normalize("비밀번호 재설정 방법") == normalize("비밀번호재설정 방법") == normalize("비밀번호 재설정방법")
    assert normalize("로그인이 안 돼요") == normalize("로그인이 안돼요")
    assert normalize("거실 불 켜 줘") != normalize("거실 불 꺼 줘")  # one syllable is the whole meaning
    # Only between Hangul: Latin words and numbers keep their spaces.
    assert normalize("아이폰 iOS 17 업데이트") == "아이폰 ios 17 업데이트"
