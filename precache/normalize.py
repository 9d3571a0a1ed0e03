"""Question normalisation and hashing for the exact tier."""

import hashlib
import re
import unicodedata
from itertools import groupby

_SPACE = re.compile(r"\s+")
# Korean spacing is loose ("비밀번호 재설정", "비밀번호재설정"): a space between two Hangul syllables is dropped.
_HANGUL_SPACE = re.compile(r"(?<=[\uac00-\ud7a3]) (?=[\uac00-\ud7a3])")
# Unicode's Default_Ignorable_Code_Point set (DerivedCoreProperties.txt): zero-width characters, bidi
# controls, the soft hyphen, variation selectors, tag characters, the invisible Hangul fillers.
# They draw nothing, so two questions that differ only in them read the same and must share a key.
IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
# The other control characters draw nothing either (those that are whitespace are collapsed later).
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
_SCRIPT_MARK = {"<super>": "^", "<sub>": "_"}
# Spellings of one symbol, after NFKC: dashes and the minus sign, curly quotes, the fraction slash
# (NFKC turns ½ into 1⁄2), and the comparison signs typed as one character.
_SAME = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
                       "\u2212": "-", "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"',
                       "\u2044": "/", "\u2215": "/", "\u2264": "<=", "\u2265": ">=", "\u2260": "!="})
# Punctuation that names something wherever it stands: C#, 5%, R&D, @user, and/or, 5 * 3, __init__, x^{23}.
KEPT = frozenset("#%&@*/\\_{}")
EMPTY_PAIRS = ("()", "[]")  # what is [] in Python? is not what is () in Python?


def _script_mark(ch: str) -> str:
    """Return ^ for a superscript, _ for a subscript, "" for any other character."""
    return _SCRIPT_MARK.get(unicodedata.decomposition(ch).partition(" ")[0], "")


def _mark_scripts(text: str) -> str:
    """Write superscripts and subscripts as LaTeX does: m² -> m^2, x²³ -> x^{23}, H₂O -> H_2O."""
    out = []
    for mark, chars in groupby(text, key=_script_mark):
        run = "".join(chars)
        if mark:
            run = unicodedata.normalize("NFKC", run)
            run = f"{mark}{run}" if len(run) == 1 else f"{mark}{{{run}}}"
        out.append(run)
    return "".join(out)


def _keeps_meaning(text: str, i: int) -> bool:
    """Tell whether the punctuation at text[i] changes what the question means."""
    ch, before = text[i], text[i - 1] if i else " "
    after, next2 = text[i + 1 : i + 2] or " ", text[i + 2 : i + 3] or " "
    if ch in KEPT or (before.isalnum() and after.isalnum()):  # "3.5", "don't", "e-mail" stay
        return True
    if before + ch in EMPTY_PAIRS or ch + after in EMPTY_PAIRS:
        return True
    if ch == "!":
        return after == "="  # x != y; a "!" that ends a sentence goes
    if ch in "-.":  # a minus sign (-5, -.5) or a decimal point (.5)
        return after.isdigit() or (ch == "-" and after == "." and next2.isdigit())
    return False


def normalize(question: str) -> str:
    """Return the question's exact-tier key text: two questions share it only when they mean the same.

    Merged: invisible characters (zero-width, bidi controls, soft hyphen, variation selectors, tags,
    Hangul fillers, other controls: removed before anything else), case and width (NFKC, case-fold;
    Hangul syllables stay as they are, decomposed jamo compose), runs of whitespace, one symbol's
    spellings (dashes and the minus sign, curly quotes, ≤ ≥ ≠ as <= >= !=, ½ as 1/2), and
    punctuation that only ends or wraps a sentence: ? ! . , ; : quotes and brackets.

    Kept, as they change the answer:
    - every symbol (Unicode S*): + (C++), = < > <= >= (comparisons), ^, currency signs ($5 vs €5), °, ~;
    - # % & @ * / \\ _ { } wherever they stand: C# is not C, 5% is not 5, R & D, @name, a / b, 5 * 3,
      __init__, {} (braces also close a raised run: x^{23});
    - ! before = (x != y is not x = y), - before a number (-5 °C is not 5 °C), . before a digit (.5 is not 5);
    - any punctuation between two letters or digits (3.5, don't, e-mail), so numbers and words never collide;
    - superscripts and subscripts, written as LaTeX does (m² is m^2, 10⁻³ is 10^{-3}, H₂O is h_2o), where
      NFKC alone would write m² as m2 and 10⁻³ as 10-3;
    - brackets of an empty pair: [] is not ().

    Korean words are written without the spaces between them: Korean spacing varies from writer to
    writer without changing what is asked ("비밀번호 재설정" and "비밀번호재설정", "안 돼요" and "안돼요").
    """
    text = _CONTROL.sub("", IGNORABLE.sub("", question))
    text = unicodedata.normalize("NFKC", _mark_scripts(text)).casefold().translate(_SAME)
    out = [ch if not unicodedata.category(ch).startswith("P") or _keeps_meaning(text, i) else " "
           for i, ch in enumerate(text)]
    return _HANGUL_SPACE.sub("", _SPACE.sub(" ", "".join(out)).strip())


def question_hash(normalized: str) -> str:
    """Return the hex SHA-256 of a normalised question."""
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def namespace_id(namespace: str) -> str:
    """Return a short, key-safe id for a namespace string."""
    return hashlib.sha256(namespace.encode("utf-8")).hexdigest()[:16]
