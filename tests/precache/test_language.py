"""The language of a text: Korean when Hangul is enough of its letters."""

import pytest

from precache.language import ENGLISH, KOREAN, hangul_share, language_of


@pytest.mark.parametrize(("text", "language"), [
    ("비밀번호를 어떻게 재설정하나요?", KOREAN),
    ("아이폰 iOS 업데이트 방법", KOREAN),  # product names in Latin letters stay Korean
    ("How do I reset my password?", ENGLISH),
    ("What does 감사합니다 mean in English?", ENGLISH),  # one Korean word in an English question
    ("12345 ???", ENGLISH),
    ("", ENGLISH),
])
def test_language_of(text, language):
    assert language_of(text) == language


def test_hangul_share_counts_letters_only():
    assert hangul_share("배송 3일?") == 1.0
    assert hangul_share("") == 0.0
