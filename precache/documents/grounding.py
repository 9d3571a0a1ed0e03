"""Answers grounded in passages: the chat that asks the model to answer from them, how much of an answer
they support, and the answer made of their own sentences when the model's is not supported.
"""

import re
from typing import TYPE_CHECKING

from precache.documents.words import content_words

if TYPE_CHECKING:  # retrieval loads the lexical index's library: the quality score needs none of it
    from precache.documents.retrieval import Found

# A sentence ends at . ! ? (or their CJK forms) followed by a space, or at a line break.
SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")
EXTRACT_CHARS = 500  # the longest extractive answer, in characters (whole sentences)
PROMPT_CHARS = 1800  # the passages' text sent to the model at most, best first


def grounded_chat(system: str, instruction: str, question: str, passages: list["Found"]) -> list[dict]:
    """Return the chat that asks the model to answer a question from these passages only."""
    shown, used = [], 0
    for number, passage in enumerate(passages, 1):
        text = passage.text[:max(0, PROMPT_CHARS - used)]
        if not text:
            break
        shown.append(f"[{number}] {passage.document}\n{text}")
        used += len(text)
    context = "\n\n".join(shown)
    return [{"role": "system", "content": f"{system} {instruction}"},
            {"role": "user", "content": f"Passages:\n{context}\n\nQuestion: {question}"}]


def groundedness(answer: str, passages: list[str]) -> float:
    """Return the share of the answer's distinct content words that its passages contain (1.0: all of them)."""
    words = set(content_words(answer))
    if not words:
        return 0.0
    supported = set(content_words(" ".join(passages)))
    return len(words & supported) / len(words)


def sentences(text: str) -> list[str]:
    """Return the sentences of a text, stripped, empty ones left out."""
    return [part.strip() for part in SENTENCE_END.split(text) if part.strip()]


def extractive_answer(question: str, passages: list["Found"], limit: int = EXTRACT_CHARS) -> str:
    """Return an answer made of the best passage's own sentences: from the one sharing most content words
    with the question (the first when none does), and those after it, whole, up to `limit` characters."""
    parts = sentences(passages[0].text)
    asked = set(content_words(question))
    start = max(range(len(parts)), key=lambda i: (len(asked & set(content_words(parts[i]))), -i))
    chosen, used = [], 0
    for sentence in parts[start:]:
        if chosen and used + len(sentence) + 1 > limit:
            break
        chosen.append(sentence[:limit])
        used += len(sentence) + 1
    return " ".join(chosen)
