"""Admin commands: review, approve, invalidate, pin or replace answers; list, confirm and retract learned phrasings."""

import json

import click

from cli.common import TENANT, context


@click.group()
def admin():
    """Review answers below the quality threshold; approve, invalidate, pin or replace answers."""


@admin.command("review")
@TENANT
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def admin_review(tenant, limit, as_json):
    """List curated answers askers reported as not fitting, then answers below the quality threshold, that
    nobody approved or rejected."""
    from precache.admin import awaiting_review

    rows = awaiting_review(context(tenant), limit)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row))
        else:
            why = (f"reported by {row['reports']}" if row["reason"] == "reported" else f"q={row['quality']:.3f}")
            click.echo(f"#{row['answer_id']:<6} {why}  {row['question'][:60]!r} -> {row['answer'][:60]!r}")
    if not as_json:
        click.echo(f"{len(rows)} answer(s) awaiting review")


def _admin_action(action, answer_id: int, tenant: str, *args) -> None:
    from precache.admin import NotFound

    try:
        view = action(context(tenant), answer_id, *args)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(view))


@admin.command("approve")
@click.argument("answer_id", type=int)
@TENANT
def admin_approve(answer_id, tenant):
    """Serve an answer whatever its quality score."""
    from precache.admin import approve

    _admin_action(approve, answer_id, tenant)


@admin.command("invalidate")
@click.argument("answer_id", type=int)
@TENANT
def admin_invalidate(answer_id, tenant):
    """Never serve an answer again (the next asker gets the next best one, or a new one)."""
    from precache.admin import reject

    _admin_action(reject, answer_id, tenant)


@admin.command("pin")
@click.argument("answer_id", type=int)
@click.option("--unpin", is_flag=True, help="Stop pinning the answer.")
@TENANT
def admin_pin(answer_id, unpin, tenant):
    """Serve an answer before any other of its question."""
    from precache.admin import pin

    _admin_action(pin, answer_id, tenant, not unpin)


@admin.command("replace")
@click.argument("answer_id", type=int)
@click.argument("text")
@TENANT
def admin_replace(answer_id, text, tenant):
    """Replace an answer by TEXT, stored as the question's curated answer."""
    from precache.admin import replace

    if not text.strip():
        raise click.BadParameter("the new answer is empty", param_hint="TEXT")
    _admin_action(replace, answer_id, tenant, text.strip())


@admin.command("learned")
@click.option("--tenant", default=None, help="Only this tenant's learned phrasings (default: every tenant's).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def admin_learned(tenant, as_json):
    """List the phrasings learned from askers' feedback: who taught each, when, and whether it was retracted."""
    from precache.feedback import learned

    rows = learned(context(""), tenant)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row))
        else:
            state = (f"retracted by {row['retracted_by']}" if row["retracted_at"]
                     else "serving" if row["confirmed_at"] else "waiting for more askers")
            click.echo(f"#{row['id']:<6} {row['phrasing'][:60]!r} -> answer {row['answer_id']}  "
                       f"[{row['tenant'] or '-'}] taught by {row['taught_by']} at {row['taught_at'][:19]}; {state}")
    if not as_json:
        click.echo(f"{len(rows)} learned phrasing(s)")


@admin.command("unlearn")
@click.argument("link_id", type=int)
def admin_unlearn(link_id):
    """Retract a learned phrasing (ID from `precache admin learned`): it is served that answer no more."""
    from precache.feedback import unlearn

    _link_action(lambda ctx: unlearn(ctx, link_id, by="admin (cli)"), link_id)


@admin.command("confirm")
@click.argument("link_id", type=int)
def admin_confirm(link_id):
    """Confirm a learned phrasing that waits for more askers (ID from `precache admin learned`): it serves others."""
    from precache.feedback import confirm

    _link_action(lambda ctx: confirm(ctx, link_id), link_id)


@admin.command("negatives")
@click.option("--tenant", default=None, help="Only this tenant's negatives (default: every tenant's).")
@click.option("--answer", "answer_id", type=int, default=None, help="Only the negatives against this answer.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def admin_negatives(tenant, answer_id, as_json):
    """List the negatives askers gave ("does not fit", "none fits"), newest first."""
    from precache.feedback import negatives

    rows = negatives(context(""), tenant, answer_id)
    for row in rows:
        if as_json:
            click.echo(json.dumps(row))
        else:
            against = f"answer {row['answer_id']}" if row["answer_id"] else f"none of {sorted(row['shown'])}"
            click.echo(f"#{row['id']:<6} {row['phrasing'][:60]!r} -> {against}  [{row['tenant'] or '-'}] by "
                       f"{row['asker']} at {row['created_at'][:19]}")
    if not as_json:
        click.echo(f"{len(rows)} negative(s)")


@admin.command("withdraw")
@click.argument("feedback_id", type=int)
def admin_withdraw(feedback_id):
    """Undo a negative (ID from `precache admin negatives`): web processes forget it at their next ask."""
    from precache.feedback import withdraw

    view = withdraw(context(""), feedback_id)
    if view is None:
        raise click.ClickException(f"no negative {feedback_id}; list them with `precache admin negatives`")
    click.echo(json.dumps(view))


def _link_action(action, link_id: int) -> None:
    view = action(context(""))
    if view is None:
        raise click.ClickException(f"no learned phrasing {link_id}; list them with `precache admin learned`")
    click.echo(json.dumps(view))


COMMANDS = (admin,)
