"""Question normalisation and hashing for the exact tier."""

import hashlib
import re
import unicodedata

_SPACE = re.compile(r"\s+")


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def normalize(question: str) -> str:
    """Return the question in NFKC, case-folded, with outer punctuation dropped and spaces collapsed.

    Punctuation between two letters or digits stays ("3.5", "don't", "e-mail") so that
    different numbers and words never collide.
    """
    text = unicodedata.normalize("NFKC", question).casefold()
    out = []
    for i, ch in enumerate(text):
        if _is_punct(ch):
            before = text[i - 1] if i else " "
            after = text[i + 1] if i + 1 < len(text) else " "
            if not (before.isalnum() and after.isalnum()):
                ch = " "
        out.append(ch)
    return _SPACE.sub(" ", "".join(out)).strip()


def question_hash(normalized: str) -> str:
    """Return the hex SHA-256 of a normalised question."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def namespace_id(namespace: str) -> str:
    """Return a short, key-safe id for a namespace string."""
    return hashlib.sha256(namespace.encode("utf-8")).hexdigest()[:16]
