"""web/identity.py: the client's address through trusted proxies only, and an asker named only when vouched for."""

import pytest
from flask import Flask

from precache.config import load_settings
from web.identity import asker, client_address, vouched

PROXIES = "10.0.0.0/24, 2001:db8::1"
KEY = "app-key"


def request_from(peer: str, headers: dict | list | None = None):
    """A request context whose connection comes from `peer` with these headers."""
    return Flask(__name__).test_request_context("/", environ_base={"REMOTE_ADDR": peer}, headers=headers or {})


def address(peer: str, forwarded_for: str | list[str] | None = None, proxies: str = PROXIES) -> str:
    headers = [("X-Forwarded-For", hops) for hops in
               ([forwarded_for] if isinstance(forwarded_for, str) else forwarded_for or [])]
    with request_from(peer, headers) as context:
        return client_address(context.request, load_settings(trusted_proxies=proxies))


def test_without_trusted_proxies_the_client_is_the_peer_whatever_it_forwards():
    assert address("10.0.0.5", "203.0.113.9", proxies="") == "10.0.0.5"
    assert address("198.51.100.4") == "198.51.100.4"


def test_forwarded_for_from_an_untrusted_peer_is_ignored():
    assert address("198.51.100.4", "203.0.113.9") == "198.51.100.4"


def test_forwarded_for_from_a_trusted_proxy_names_the_client():
    assert address("10.0.0.5", "203.0.113.9") == "203.0.113.9"
    assert address("2001:db8::1", "203.0.113.9") == "203.0.113.9"
    assert address("::ffff:10.0.0.5", "203.0.113.9") == "203.0.113.9"  # a dual-stack socket's IPv4 peer


def test_a_spoofed_leftmost_entry_loses_to_the_rightmost_untrusted_one():
    # The client wrote "1.1.1.1, 10.0.0.9"; the proxy appended the address it saw, 203.0.113.9.
    assert address("10.0.0.5", "1.1.1.1, 10.0.0.9, 203.0.113.9") == "203.0.113.9"
    assert address("10.0.0.5", "1.1.1.1, 203.0.113.9, 10.0.0.7") == "203.0.113.9"  # two trusted hops skipped
    assert address("10.0.0.5", ["1.1.1.1", "203.0.113.9, 10.0.0.7"]) == "203.0.113.9"  # headers read as one list


def test_a_chain_of_trusted_hops_ends_at_its_leftmost_and_garbage_stops_the_walk():
    assert address("10.0.0.5", "10.0.0.8, 10.0.0.7") == "10.0.0.8"
    assert address("10.0.0.5", "") == "10.0.0.5"
    assert address("10.0.0.5", "203.0.113.9, unknown") == "10.0.0.5"  # cannot see past a hop that is no address
    assert address("10.0.0.5", "203.0.113.9, unknown, 10.0.0.7") == "10.0.0.7"


def who(headers: dict, key: str | None = KEY, peer: str = "198.51.100.4") -> str:
    with request_from(peer, headers) as context:
        return asker(context.request, load_settings(feedback_key=key, trusted_proxies=PROXIES))


def test_an_asker_id_counts_only_with_the_feedback_key():
    assert who({"X-Asker-Id": "alice", "X-Feedback-Key": KEY}) == "asker:alice"
    assert who({"X-Asker-Id": "alice"}) == "address:198.51.100.4"
    assert who({"X-Asker-Id": "alice", "X-Feedback-Key": "guess"}) == "address:198.51.100.4"
    assert who({"X-Asker-Id": "alice", "X-Feedback-Key": ""}, key=None) == "address:198.51.100.4"  # no key set


def test_an_unvouched_asker_is_the_client_behind_a_trusted_proxy():
    headers = {"X-Asker-Id": "alice", "X-Forwarded-For": "203.0.113.9"}
    assert who(headers, peer="10.0.0.5") == "address:203.0.113.9"


def test_an_asker_id_that_the_columns_cannot_hold_is_the_address():
    vouch = {"X-Feedback-Key": KEY}
    assert who(vouch | {"X-Asker-Id": "a" * 122}) == "asker:" + "a" * 122  # 128 characters in all
    assert who(vouch | {"X-Asker-Id": "a" * 123}) == "address:198.51.100.4"
    assert who(vouch | {"X-Asker-Id": "  "}) == "address:198.51.100.4"


def test_vouched_compares_the_key():
    with request_from("198.51.100.4", {"X-Feedback-Key": KEY}) as context:
        assert vouched(context.request, load_settings(feedback_key=KEY))
        assert not vouched(context.request, load_settings(feedback_key="other"))
        assert not vouched(context.request, load_settings(feedback_key=None))
