"""Error responses (web/errors.py): what a client gets for a route or a method that does not exist."""


def test_unknown_route_and_method_are_json_errors(client):
    assert client.get("/v1/nothing").json["error"]["code"] == "not_found"
    r = client.get("/v1/ask")
    assert r.status_code == 405 and "error" in r.json
