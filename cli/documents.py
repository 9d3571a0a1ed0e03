"""Document commands: import the team's documents (the passages grounded answers are written from), list them."""

from pathlib import Path

import click

from cli.common import TENANT, context


@click.group()
def docs():
    """The team's documents: what answers are grounded in."""


@docs.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--prune", is_flag=True, help="Remove the tenant's documents that are not among these files.")
@TENANT
def docs_import(paths, prune, tenant):
    """Import Markdown, text, HTML or PDF files, or folders of them (names relative to the folder given).

    A changed document replaces its old passages, and the cached answers that used them stop being served
    at once and are generated again; unchanged documents are left alone. A file that cannot be read is
    reported and skipped (exit status 1)."""
    from tqdm import tqdm

    from precache.documents.importing import import_documents
    from precache.documents.reading import Unreadable, collect, read
    from precache.semantic.embedders import embedder_for

    ctx = context(tenant)
    documents, failed = [], []
    for name, path in collect(list(paths)):
        try:
            documents.append(read(name, path))
        except Unreadable as exc:
            failed.append({"name": name, "error": exc.reason})
    embedder = embedder_for(ctx.settings, threads=None)
    with tqdm(total=len(documents), desc="importing", unit="doc") as bar:
        report = import_documents(ctx, embedder, documents, prune=prune, failed=failed,
                                  progress=lambda name: (bar.set_postfix_str(name[-40:]), bar.update()))
    for entry in report.failed:
        click.echo(f"skipped {entry['name']}: {entry['error']}", err=True)
    click.echo(f"{len(report.added)} added, {len(report.updated)} updated, {len(report.unchanged)} unchanged, "
               f"{len(report.removed)} removed, {len(report.failed)} skipped; {report.passages} passages written; "
               f"{report.outdated} cached answers outdated, {report.queued} queued again")
    if report.failed:
        raise SystemExit(1)


@docs.command("list")
@TENANT
def docs_list(tenant):
    """List the tenant's documents: name, passages, characters, when imported."""
    from precache.documents.importing import listed

    for row in listed(context(tenant)):
        click.echo(f"{row['name']}\t{row['passages']} passages\t{row['chars']} chars\t{row['imported_at']}")


COMMANDS = [docs]
