"""The words of a text that carry its content: what lexical retrieval matches and groundedness counts.

English (and any Latin-script) words are lower-cased and stop words dropped; a Korean word becomes its
syllable pairs (모바일에서 → 모바, 바일, 일에, 에서), which match across particles and spacing without a
morphological analyser. Digits are words too: a number an answer states must be in its passages.
"""

import re

WORD = re.compile(r"[^\W_]+", re.UNICODE)
HANGUL = re.compile(r"[\uac00-\ud7a3]")

# Function words that say nothing of a text's subject (a common English list, without the negations).
STOP_WORDS = frozenset("""
a about above after again all also am an and any are as at be because been before being below between both but
by can could did do does doing down during each few for from further had has have having he her here hers herself
him himself his how i if in into is it its itself just let me more most my myself of off on once only or other
ought our ours ourselves out over own same she should so some such than that the their theirs them themselves then
there these they this those through to too under until up upon very was we were what when where which while who
whom why will with would you your yours yourself yourselves get got may might must shall use using used one ones
thing things way like want need make also yes via etc e g i.e eg ie s t ll re ve d m
""".split())


def content_words(text: str) -> list[str]:
    """Return the content words of a text, in order (a Korean word as its syllable pairs)."""
    words = []
    for word in WORD.findall(text.lower()):
        if HANGUL.search(word):
            words.extend([word] if len(word) == 1 else [word[i:i + 2] for i in range(len(word) - 1)])
        elif word not in STOP_WORDS and (len(word) > 1 or word.isdigit()):
            words.append(word)
    return words
