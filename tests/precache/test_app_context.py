"""The protocol of `ctx` (precache/app_context.py): a Context and each TenantContext of it satisfy it."""

from precache.app_context import AppContext


def test_a_context_and_a_tenants_context_are_app_contexts(ctx):
    assert isinstance(ctx, AppContext) and isinstance(ctx.for_tenant("acme"), AppContext)
