"""The language of a question or an answer: Korean when Hangul makes up enough of its letters, else English.

The semantic tier embeds each language with its own model, the guards read each language's grammar,
and every answer an asker gets (template, fallback, generated) is in the asker's language. Only the
two languages the product is built for are told apart; any other text is handled as English is.
"""

import re

KOREAN, ENGLISH = "ko", "en"
LANGUAGES = (ENGLISH, KOREAN)
HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
# Korean questions name products and terms in Latin letters ("아이폰 iOS 업데이트"): Hangul need not be most of it.
KOREAN_SHARE = 0.3


def hangul_share(text: str) -> float:
    """Return the share of a text's letters that are Hangul (0 for a text without letters)."""
    letters = [ch for ch in text if ch.isalpha()]
    return sum(bool(HANGUL.match(ch)) for ch in letters) / len(letters) if letters else 0.0


def language_of(text: str) -> str:
    """Return "ko" for Korean text, else "en"."""
    return KOREAN if hangul_share(text) >= KOREAN_SHARE else ENGLISH
