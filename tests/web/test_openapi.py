"""GET /openapi.json: a valid OpenAPI 3.1 document, generated from the models, covering every route.

The last test fuzzes the live app from that document (schemathesis): no request may get a 5xx,
every error must say {"error": {"code", "message"}}, and every response must match the spec.
"""

import collections
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from web import create_app
from web.openapi_spec import REF
from web.schemas import AskRequest

IGNORED_METHODS = {"HEAD", "OPTIONS"}  # Flask adds them to every rule



def openapi_path(rule: str) -> str:
    """Flask's /v1/jobs/<job_id> (or <string:job_id>) as OpenAPI's /v1/jobs/{job_id}."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>:]+)>", r"{\1}", rule)


def app_routes(app) -> set[tuple[str, str]]:
    """(method, OpenAPI path) for every route of the app except the static files."""
    return {
        (method.lower(), openapi_path(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - IGNORED_METHODS
    }


def documented_routes(spec: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, item in spec["paths"].items() for method in item}


def undocumented(app, spec: dict) -> set[tuple[str, str]]:
    return app_routes(app) - documented_routes(spec)


def resolve(spec: dict, obj: dict) -> dict:
    """Follow local $refs (#/components/...) until a non-ref object."""
    while "$ref" in obj:
        node = spec
        for part in obj["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        obj = node
    return obj


@pytest.fixture
def spec(client) -> dict:
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    return r.json


def test_spec_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1.")
    validate(spec)  # openapi-spec-validator: raises on any violation of the 3.1 schema


def test_spec_is_built_once_per_app(app, client):
    first = client.get("/openapi.json").json
    assert app.extensions["precache_openapi"] == first
    assert client.get("/openapi.json").json == first


def test_every_route_of_the_app_is_documented(app, spec):
    assert undocumented(app, spec) == set(), "add the route to OPERATIONS in web/openapi.py"


def test_a_new_undocumented_route_is_caught(config, spec):
    app = create_app(config)
    app.add_url_rule("/v1/not-in-the-spec/<int:n>", "extra", lambda n: "", methods=["GET", "DELETE"])
    try:
        assert undocumented(app, spec) == {("get", "/v1/not-in-the-spec/{n}"), ("delete", "/v1/not-in-the-spec/{n}")}
    finally:
        app.extensions["precache"].close()


def test_every_documented_route_exists(app, spec):
    missing = documented_routes(spec) - app_routes(app)
    assert missing == set(), "the spec documents routes the app does not serve"


def test_error_responses_use_the_error_body(spec):
    error_body = resolve(spec, {"$ref": REF.format(model="ErrorBody")})
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if status != "default" and int(status) < 400 or (path, status) == ("/readyz", "503"):
                    continue
                schema = resolve(spec, resolve(spec, response)["content"]["application/json"]["schema"])
                assert schema == error_body, f"{method.upper()} {path} {status}"


def test_ask_request_schema_is_generated_from_the_model(spec):
    body = spec["paths"]["/v1/ask"]["post"]["requestBody"]
    assert body["required"] is True
    schema = resolve(spec, body["content"]["application/json"]["schema"])
    assert schema == AskRequest.model_json_schema(ref_template=REF)
    assert schema["additionalProperties"] is False and schema["required"] == ["question"]


def test_every_path_parameter_is_declared(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), f"{method.upper()} {path}"


# --- property-based: schemathesis against the live WSGI app -------------------------------------

MAX_EXAMPLES = 100  # per operation, fuzzing phase; the examples and coverage phases add their own cases


@pytest.fixture
def fuzz_app(config):
    # Small max_wait_ms and stream_max_s keep generated requests from waiting on a worker.
    app = create_app(config | {"max_wait_ms": 50, "stream_max_s": 1, "chat_wait_ms": 50})
    yield app
    app.extensions["precache"].close()


@pytest.fixture
def api_schema(fuzz_app):
    config = schemathesis.Config.from_dict({"seed": 20240501, "generation": {"mode": "all"}})
    return schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app, config=config)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def fuzzed(fuzz_app):
    """Statuses seen per operation; afterwards, every operation must have been exercised."""
    spec = fuzz_app.test_client().get("/openapi.json").json
    seen = collections.defaultdict(collections.Counter)
    yield seen
    # schemathesis never calls the path it loaded the schema from (GET /openapi.json)
    expected = {f"{method.upper()} {path}" for method, path in documented_routes(spec)} - {"GET /openapi.json"}
    assert set(seen) == expected, f"operations not exercised: {sorted(expected - set(seen))}"
    assert seen["POST /v1/ask"][400], "no invalid ask body was generated"


@pytest.fixture
def _schemathesis_pytest9_compat(request):
    # schemathesis 4.32's from_fixture reads and renames `request.node._nodeid`, which pytest 9.2
    # no longer has (Node.nodeid is now computed). Give it the attribute back; only its subtest
    # labels use it.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.mark.usefixtures("_schemathesis_pytest9_compat")
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
def test_fuzz_no_server_errors_and_errors_explain_themselves(case, fuzzed):
    response = case.call()
    fuzzed[case.operation.label][response.status_code] += 1
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance],
    )
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and error["code"], response.text
        assert isinstance(error["message"], str) and error["message"], response.text


# --- regressions found by fuzzing (bench/fuzz.py) ------------------------------------------------


@pytest.mark.parametrize("body", ["[" * 30000 + "]" * 30000, '{"a":' * 10000 + "1" + "}" * 10000])
def test_deeply_nested_json_is_a_400_not_a_500(client, body):
    r = client.post("/v1/ask", data=body, content_type="application/json")
    assert r.status_code == 400
    assert r.json["error"]["code"] == "invalid_json"
