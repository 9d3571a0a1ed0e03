from web import create_app


def test_a_client_over_its_limit_gets_429_with_retry_after(config):
    app = create_app(config | {"rate_limit": "3/minute"})
    client = app.test_client()
    statuses = [client.post("/v1/ask", json={"question": "hello"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    r = client.post("/v1/ask", json={"question": "hello"})
    assert r.status_code == 429
    assert r.json["error"]["code"] == "rate_limited" and "3 per 1 minute" in r.json["error"]["message"]
    assert 0 < int(r.headers["Retry-After"]) <= 60
    other = client.post("/v1/ask", json={"question": "hello"}, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert other.status_code == 200  # per client
    app.extensions["precache"].close()


def test_probes_and_metrics_are_never_limited(config):
    app = create_app(config | {"rate_limit": "1/minute"})
    client = app.test_client()
    for path in ("/healthz", "/readyz", "/metrics") * 3:
        assert client.get(path).status_code == 200, path
    app.extensions["precache"].close()


def test_no_limit_when_the_setting_is_empty(client):
    assert all(client.post("/v1/ask", json={"question": "hello"}).status_code == 200 for _ in range(30))


def test_limits_without_redis_still_answer(config):
    app = create_app(config | {"rate_limit": "100/minute", "redis_url": "redis://127.0.0.1:1/0",
                               "broker_url": "redis://127.0.0.1:1/1"})
    r = app.test_client().post("/v1/ask", json={"question": "hello"})
    assert r.status_code == 200 and r.json["source"] == "template"
    app.extensions["precache"].close()


def test_behind_a_trusted_proxy_the_limit_counts_each_forwarded_client(config):
    app = create_app(config | {"rate_limit": "2/minute", "trusted_proxies": "10.0.0.0/24"})
    client = app.test_client()

    def ask(forwarded_for: str, peer: str = "10.0.0.5") -> int:
        return client.post("/v1/ask", json={"question": "hello"}, headers={"X-Forwarded-For": forwarded_for},
                           environ_base={"REMOTE_ADDR": peer}).status_code

    assert [ask("203.0.113.9") for _ in range(3)] == [200, 200, 429]
    assert ask("203.0.113.10") == 200  # another client through the same proxy has its own count
    assert ask("203.0.113.11, 203.0.113.9") == 429  # a made-up leftmost entry does not reset the count
    # An untrusted peer's X-Forwarded-For is ignored: the peer is counted.
    assert [ask(f"192.0.2.{n}", peer="198.51.100.7") for n in range(3)] == [200, 200, 429]
    app.extensions["precache"].close()
