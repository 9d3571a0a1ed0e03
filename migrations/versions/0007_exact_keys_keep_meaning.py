"""exact keys keep meaning: recompute the normalised text and hash of stored questions, feedback and asks

The normalisation used to drop symbols that change a question's meaning (C# was C, -5 was 5, 5% was 5,
x != y was x = y) and kept invisible characters (pass<U+200B>word was not password). This recomputes,
with the new rule, every key that decides what is served:

- questions: `normalized` and `qhash`. Two questions that the new rule gives one key (they differed
  only in invisible characters, curly quotes or a dash's spelling, so they mean the same) are merged
  the way paraphrases are: the oldest keeps the key; each other one points at it (`canonical_id`, or
  at the question the oldest itself points at, as a link is followed once) and gets a fresh unique
  hash that no question can normalise to (the key, a NUL and its id, hashed), so no unique constraint
  breaks. Its answers stay with it; an asker of the key is served the oldest's.
- feedback: `qhash`, from the question asked; the learned vetoes are looked up by the asker's key.
- ask_log: `qhash`, from the question asked: it is history, but predictive precompute groups recent
  misses by it and stores a question under the logged hash, which must be the new rule's.

The hot cache in Redis is keyed by the hash too and this migration cannot reach it: an entry stored
under an old key that the new rule gives to another question (the answer to "C#?" under the key of
"C?") is served until it expires, so delete the `precache:answer:*` keys after migrating.

The rule is frozen below, not imported: this migration must do the same when the code's rule moves on.
Downgrade leaves the keys as they are: the old rule gives C# and C one key, so recomputing would merge
questions that differ, and the old code only misses on the new keys (it asks again and stores anew).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-11 09:00:00
"""

import hashlib
import logging
import re
import unicodedata
from itertools import groupby

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
BATCH = 5000

# precache/normalize.py as of this revision, frozen.
_SPACE = re.compile(r"\s+")
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
_SCRIPT_MARK = {"<super>": "^", "<sub>": "_"}
_SAME = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
                       "\u2212": "-", "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"',
                       "\u2044": "/", "\u2215": "/", "\u2264": "<=", "\u2265": ">=", "\u2260": "!="})
_KEPT = frozenset("#%&@*/\\_{}")
_EMPTY_PAIRS = ("()", "[]")


def _script_mark(ch: str) -> str:
    return _SCRIPT_MARK.get(unicodedata.decomposition(ch).partition(" ")[0], "")


def _mark_scripts(text: str) -> str:
    out = []
    for mark, chars in groupby(text, key=_script_mark):
        run = "".join(chars)
        if mark:
            run = unicodedata.normalize("NFKC", run)
            run = f"{mark}{run}" if len(run) == 1 else f"{mark}{{{run}}}"
        out.append(run)
    return "".join(out)


def _keeps_meaning(text: str, i: int) -> bool:
    ch, before = text[i], text[i - 1] if i else " "
    after, next2 = text[i + 1 : i + 2] or " ", text[i + 2 : i + 3] or " "
    if ch in _KEPT or (before.isalnum() and after.isalnum()):
        return True
    if before + ch in _EMPTY_PAIRS or ch + after in _EMPTY_PAIRS:
        return True
    if ch == "!":
        return after == "="
    if ch in "-.":
        return after.isdigit() or (ch == "-" and after == "." and next2.isdigit())
    return False


def normalize(question: str) -> str:
    """Return the question's key text by the rule of this revision."""
    text = _CONTROL.sub("", _IGNORABLE.sub("", question))
    text = unicodedata.normalize("NFKC", _mark_scripts(text)).casefold().translate(_SAME)
    out = [ch if not unicodedata.category(ch).startswith("P") or _keeps_meaning(text, i) else " "
           for i, ch in enumerate(text)]
    return _SPACE.sub(" ", "".join(out)).strip()


def question_hash(normalized: str) -> str:
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def merged_hash(normalized: str, question_id: int) -> str:
    """A unique hash for a question merged into another: normalize() removes NUL, so nobody asks it."""
    return question_hash(f"{normalized}\x00merged:{question_id}")


questions = sa.table('questions', sa.column('id', sa.Integer), sa.column('text', sa.Text),
                     sa.column('normalized', sa.Text), sa.column('qhash', sa.String),
                     sa.column('canonical_id', sa.Integer), sa.column('created_at', sa.DateTime))


def rekey_questions(conn, rule=None) -> tuple[int, int]:
    """Give each question the new rule's key, merging those that now share one; return (rekeyed, merged).

    `rule` is the normalisation (this revision's by default; a later revision passes its own)."""
    normalize_ = rule or normalize
    rows = conn.execute(sa.select(questions).order_by(questions.c.created_at, questions.c.id)).all()
    oldest: dict[str, sa.Row] = {}
    changes = []
    for row in rows:
        norm = normalize_(row.text)
        qhash, canonical_id = question_hash(norm), row.canonical_id
        if (first := oldest.setdefault(qhash, row)) is not row:
            canonical_id = first.canonical_id if first.canonical_id not in (None, row.id) else first.id
            qhash = merged_hash(norm, row.id)
        if (qhash, norm, canonical_id) != (row.qhash, row.normalized, row.canonical_id):
            changes.append({"row_id": row.id, "qhash": qhash, "normalized": norm, "canonical_id": canonical_id})
    if changes:  # new keys may be other rows' old ones: move the changed rows out of the way first
        by_id = questions.update().where(questions.c.id == sa.bindparam("row_id"))
        conn.execute(by_id, [{"row_id": c["row_id"], "qhash": f"rekey:{c['row_id']}"} for c in changes])
        conn.execute(by_id, changes)
    return len(changes), len(rows) - len(oldest)


def rehash_asked(conn, name: str, rule=None) -> int:
    """Recompute `qhash` from `question` in a table of asked questions (not unique); return rows changed."""
    normalize_ = rule or normalize
    table = sa.table(name, sa.column('id', sa.Integer), sa.column('question', sa.Text), sa.column('qhash', sa.String))
    changed, last = 0, 0
    while rows := conn.execute(sa.select(table).where(table.c.id > last).order_by(table.c.id).limit(BATCH)).all():
        last = rows[-1].id
        updates = [{"row_id": r.id, "qhash": h} for r in rows if (h := question_hash(normalize_(r.question))) != r.qhash]
        if updates:
            conn.execute(table.update().where(table.c.id == sa.bindparam("row_id")), updates)
        changed += len(updates)
    return changed


def upgrade() -> None:
    conn = op.get_bind()
    rekeyed, merged = rekey_questions(conn)
    feedback, asks = rehash_asked(conn, 'feedback'), rehash_asked(conn, 'ask_log')
    log.info("exact keys: %d questions rekeyed (%d merged into an older one with the same key), "
             "%d feedback and %d ask log rows rehashed; delete the precache:answer:* keys in Redis",
             rekeyed, merged, feedback, asks)


def downgrade() -> None:
    log.warning("exact keys stay as the new rule made them: the old rule would merge questions that differ "
                "(C# and C); the old code misses on them and stores them anew")
