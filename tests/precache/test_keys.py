"""Every Redis key precache uses (precache/keys.py): under one prefix, distinct per namespace, tenant and job."""

import inspect

from precache import keys
from precache.config import load_settings


def every_key(ns: str, qhash: str, job_id: str) -> dict[str, str]:
    """Call every key function of precache.keys with these arguments; name -> key."""
    args = {"ns": ns, "qhash": qhash, "job_id": job_id, "kind": "quick", "level": "quick", "name": "refresh",
            "context_hash": "c0ffee", "worker_id": "cpu@host/1", "client": "address:10.0.0.1", "minute": 29433600}
    built = {}
    for name, fn in inspect.getmembers(keys, inspect.isfunction):
        params = inspect.signature(fn).parameters
        built[name] = fn(**{p: args[p] for p in params})
    return built


def test_every_key_is_under_the_prefix_and_no_two_are_the_same():
    built = every_key("llama_cpp:smollm2:v1", "abc123", "job-1")
    assert len(built) > 20
    assert all(key.startswith(f"{keys.PREFIX}:") for key in built.values()), built
    assert len(set(built.values())) == len(built)  # no two kinds of data share a key


def test_keys_of_one_tenant_are_not_those_of_another_nor_of_no_tenant():
    settings = load_settings()
    mine, theirs, nobody = (every_key(settings.namespace_for(t), "abc123", "job-1") for t in ("acme", "globex", ""))
    namespaced = {name for name in mine if "ns" in inspect.signature(getattr(keys, name)).parameters}
    assert {"answer", "pending", "inflight", "rewrite", "failures", "generating"} <= namespaced
    for name in namespaced:
        assert len({mine[name], theirs[name], nobody[name]}) == 3, name
    # A job id is global: its record and its stream are the same key whatever the tenant.
    assert mine["job"] == theirs["job"] and mine["tokens"] == theirs["tokens"]


def test_one_question_has_one_lock_per_kind_of_job():
    ns = load_settings().namespace
    locks = {keys.pending(ns, "abc123", kind) for kind in ("quick", "detailed", "refresh")}
    assert len(locks) == 3 and keys.pending(ns, "abc123") == keys.pending(ns, "abc123", "quick")
    assert keys.answer(ns, "abc123") != keys.answer(ns, "abc124")
