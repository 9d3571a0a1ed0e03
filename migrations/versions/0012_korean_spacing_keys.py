"""Korean spacing keys: a space between two Hangul syllables no longer makes another exact key

Korean spacing varies from writer to writer without changing what is asked ("비밀번호 재설정" and
"비밀번호재설정"), so the exact key now drops it. This recomputes the keys of stored questions,
feedback and asks with the new rule, as revision 0007 did (its functions, given the new rule):
questions that now share a key are merged into the oldest one. Only text with Hangul changes.

The rule is frozen below (0007's, then the Hangul spaces dropped), not imported from the code.
Downgrade leaves the keys as they are (the old code misses on them and stores them anew).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 03:00:00
"""

import importlib.util
import logging
import re
from pathlib import Path

from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
_HANGUL_SPACE = re.compile(r"(?<=[\uac00-\ud7a3]) (?=[\uac00-\ud7a3])")


def _revision_0007():
    path = Path(__file__).with_name("0007_exact_keys_keep_meaning.py")
    spec = importlib.util.spec_from_file_location("precache_migration_0007", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    keys = _revision_0007()

    def normalize(question: str) -> str:
        return _HANGUL_SPACE.sub("", keys.normalize(question))

    conn = op.get_bind()
    rekeyed, merged = keys.rekey_questions(conn, normalize)
    feedback, asks = keys.rehash_asked(conn, 'feedback', normalize), keys.rehash_asked(conn, 'ask_log', normalize)
    log.info("Korean spacing keys: %d questions rekeyed (%d merged into an older one with the same key), "
             "%d feedback and %d ask log rows rehashed", rekeyed, merged, feedback, asks)


def downgrade() -> None:
    log.warning("exact keys stay as the new rule made them; the old code misses on Korean keys and stores them anew")
