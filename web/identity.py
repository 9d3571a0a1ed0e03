"""Who a request comes from: the client's address (seen through trusted proxies) and the asker it speaks for.

Askers are not trusted (docs/api.md, "Who an asker is"): X-Forwarded-For is read only from a proxy listed
in PRECACHE_TRUSTED_PROXIES, and X-Asker-Id only from a caller holding the feedback key.
"""

import hmac
from ipaddress import IPv4Address, IPv6Address, ip_address

ASKER_COLUMN = 128  # feedback.asker and learned_phrasings.taught_by hold this many characters


def client_address(request, settings) -> str:
    """Return the client's address: the peer's, or behind trusted proxies the rightmost untrusted hop.

    X-Forwarded-For is walked from the right, each trusted proxy's hop skipped: the first hop not
    trusted is the client, since only what trusted proxies appended can be believed (a client writes
    whatever it likes on the left). A hop that is not an address stops the walk at the last one that is.
    """
    peer = request.remote_addr or "unknown"
    networks = settings.trusted_proxies
    if not _trusted(peer, networks):
        return peer
    client = peer
    for hop in reversed(_forwarded_for(request)):
        address = _address(hop)
        if address is None:
            break
        client = str(address)
        if not _trusted(client, networks):
            break
    return client  # every hop trusted: the leftmost is the client (one inside the proxies' networks)


def vouched(request, settings) -> bool:
    """Tell whether the request carries the feedback key: the calling app vouches for its askers."""
    key = settings.feedback_key
    if key is None or not key.get_secret_value():
        return False
    given = request.headers.get("X-Feedback-Key", "")
    # Constant time: the comparison takes as long whatever prefix of the key is right.
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), key.get_secret_value().encode())


def asker(request, settings) -> str:
    """Return who asks: "asker:<X-Asker-Id>" when the calling app vouches for it, else "address:<client>"."""
    given = "asker:" + request.headers.get("X-Asker-Id", "").strip()
    if given != "asker:" and len(given) <= ASKER_COLUMN and given.isprintable() and vouched(request, settings):
        return given
    return "address:" + client_address(request, settings)


def _forwarded_for(request) -> list[str]:
    """The hops of every X-Forwarded-For header, in order (several headers read as one list)."""
    return [hop.strip() for header in request.headers.getlist("X-Forwarded-For") for hop in header.split(",")]


def _address(text: str) -> IPv4Address | IPv6Address | None:
    try:
        address = ip_address(text)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.1 from a dual-stack socket is 10.0.0.1
    return mapped or address


def _trusted(text: str, networks) -> bool:
    address = _address(text) if networks else None
    return address is not None and any(address in network for network in networks)
