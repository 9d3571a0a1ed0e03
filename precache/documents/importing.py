"""Importing a tenant's documents: each new or changed one cut into passages, embedded and stored in one
transaction (replacing its old passages), unchanged ones left alone, and, when asked, those no longer
imported removed. Then the answers that used a changed or removed document are outdated
(precache.documents.changes). `precache docs import` and `POST /v1/admin/documents` both call `import_documents`.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import func, select

from precache.app_context import AppContext
from precache.db import session_scope
from precache.documents import changes
from precache.documents.passages import split
from precache.documents.reading import Document
from precache.documents.retrieval import embedded_text
from precache.models import Document as StoredDocument
from precache.models import Passage, utcnow

log = logging.getLogger(__name__)


@dataclass
class ImportReport:
    """What an import did, by document name."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)  # {"name", "error"}: reported and skipped
    passages: int = 0  # passages written
    outdated: int = 0  # cached answers that stopped being served
    queued: int = 0  # their questions queued again

    def view(self) -> dict:
        return {"added": self.added, "updated": self.updated, "unchanged": len(self.unchanged),
                "removed": self.removed, "failed": self.failed, "passages": self.passages,
                "outdated_answers": self.outdated, "queued": self.queued}


def import_documents(ctx: AppContext, embedder, documents: list[Document], prune: bool = False,
                     failed: list[dict] | None = None, progress: Callable[[str], None] = lambda name: None
                     ) -> ImportReport:
    """Store the tenant's documents, replace the changed ones, remove the others when `prune`; outdate the
    answers that used what changed. `failed` lists files that could not be read: reported, and never pruned."""
    report = ImportReport(failed=list(failed or []))
    held = _held(ctx)
    changed_ids = []
    for document in documents:
        progress(document.name)
        known = held.get(document.name)
        if known is not None and known[1] == document.content_hash:
            report.unchanged.append(document.name)
            continue
        try:
            written = _write(ctx, embedder, document, known[0] if known else None)
        except Exception as exc:  # this document keeps what it had; the others go on
            log.warning("cannot import %s: %s", document.name, exc)
            report.failed.append({"name": document.name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        report.passages += written
        (report.updated if known else report.added).append(document.name)
        if known:
            changed_ids.append(known[0])
    if prune:
        keep = {document.name for document in documents} | {entry["name"] for entry in report.failed}
        gone = {name: known for name, known in held.items() if name not in keep}
        report.removed = sorted(gone)
        changed_ids += [known[0] for known in gone.values()]
    if report.added or changed_ids:  # new documents may cover what was not in them
        outcome = changes.outdate(ctx, changed_ids)
        report.outdated, report.queued = outcome["outdated"], outcome["queued"]
    if prune and report.removed:
        with session_scope(ctx.sessions) as session:
            for name in report.removed:
                session.delete(session.get(StoredDocument, held[name][0]))
    log.info("imported documents of tenant %r: %d added, %d updated, %d unchanged, %d removed, %d failed",
             ctx.tenant, len(report.added), len(report.updated), len(report.unchanged), len(report.removed),
             len(report.failed))
    return report


def _held(ctx: AppContext) -> dict[str, tuple[int, str]]:
    """Return the tenant's stored documents: name -> (id, content hash)."""
    with ctx.sessions() as session:
        rows = session.execute(select(StoredDocument.name, StoredDocument.id, StoredDocument.content_hash)
                               .where(StoredDocument.tenant == ctx.tenant)).all()
    return {name: (document_id, content_hash) for name, document_id, content_hash in rows}


def _write(ctx: AppContext, embedder, document: Document, document_id: int | None) -> int:
    """Store one document with its passages and their vectors, replacing what it had, in one transaction."""
    passages = split(document.text)
    if not passages:
        raise ValueError("no text to cut into passages")
    vectors = embedder.encode([embedded_text(document.name, p.heading, p.text) for p in passages])
    model = embedder.name()
    with session_scope(ctx.sessions) as session:
        stored = session.get(StoredDocument, document_id) if document_id else None
        if stored is None:
            stored = StoredDocument(tenant=ctx.tenant, name=document.name)
            session.add(stored)
        else:
            stored.passages.clear()
        stored.content_hash, stored.chars = document.content_hash, len(document.text)
        stored.imported_at = utcnow()
        stored.passages.extend(
            Passage(ordinal=p.ordinal, heading=p.heading, text=p.text, model=model,
                    vector=np.asarray(vector, dtype="<f4").tobytes())
            for p, vector in zip(passages, vectors))
    return len(passages)


def listed(ctx: AppContext) -> list[dict]:
    """Return the tenant's documents, by name: passages, characters, content hash, when imported."""
    query = (select(StoredDocument.name, StoredDocument.chars, StoredDocument.content_hash,
                    StoredDocument.imported_at, func.count(Passage.id))
             .outerjoin(Passage).where(StoredDocument.tenant == ctx.tenant)
             .group_by(StoredDocument.id).order_by(StoredDocument.name))
    with ctx.sessions() as session:
        return [{"name": name, "chars": chars, "content_hash": content_hash,
                 "imported_at": imported_at.isoformat() if imported_at else None, "passages": passages}
                for name, chars, content_hash, imported_at, passages in session.execute(query)]
