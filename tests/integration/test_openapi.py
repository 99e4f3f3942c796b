"""tests/integration/test_openapi.py: GET /api/v1/openapi.json against the router and real answers.

The OpenAPI 3.1 document has one source, docs/openapi.json, compiled into analyticsd and served
at GET /api/v1/openapi.json (server/handlers/openapi.c). This file checks three things against
one seeded service (scratch database with the report and SMS demo data, Redis database 15):

1. Routes: the document describes exactly the routes the router knows, with exactly the methods
   it serves. The router is a hand-written matcher (server/router.c), so its source has no table
   to parse reliably; instead three independent sources must agree with ROUTES below:
   - the `route_id` enum of server/router.h: every ROUTE_* constant (but ROUTE_NONE) is a row of
     ROUTES and every row's constant exists, so a route added to the router without a row here
     (and a path in the document) fails;
   - tests/unit/test_router.c: every path that unit test routes to a named ROUTE_* matches the
     template ROUTES gives that constant, so the templates cannot drift from the router;
   - the running router: each template (with sample parameters) answers a DELETE with 405 and
     exactly the `Allow` header made of the document's methods, and a GET that is not the
     catch-all 404 `route was not found`, so every documented path is routed and nothing else.
   The document's paths and methods must equal ROUTES. /metrics is documented (API.md §1.1, issue
   14) but lands with the metrics work; until router.h has ROUTE_METRICS the live router must
   answer it 404, and from then on it is checked like every other route.
2. Structure: the served body is docs/openapi.json made compact (plus one line feed, no raw
   <, >, &), with Content-Type application/json; the document has openapi 3.1.0, info, paths,
   components, the two management security schemes; every $ref resolves; every schema is a valid
   JSON Schema 2020-12 schema; operationIds are unique; path parameters are declared;
   management operations require the key and declare 401, public ones require nothing; every
   response declares X-Request-Id.
3. Answers: each GET route (and POST /recomputations and /events) is called on the seeded
   service, hits and misses, errors 400/401/404/405 included, and every JSON body is validated
   with jsonschema's Draft202012Validator against the schema the document declares for that
   status code; documented headers (X-Request-Id, Allow, ETag, Cache-Control) are checked too.
   A test fails if a documented GET operation was never validated with a 200.

No timing assertions: waits (readiness, a run completing) only bound how long the test waits.
"""

import datetime
import json
import os
import re
import urllib.parse

from jsonschema import Draft202012Validator, FormatChecker

import adtest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY = "test-key"
MGMT = {"X-Management-Key": KEY}
OP = "0f000000-0000-4000-8000-000000000001"  # SMS demo data (README "SMS demo data")
AC = "0a000000-0000-4000-8000-000000000001"
UNKNOWN_UUID = "0f000000-0000-4000-8000-0000000000ff"

# Route template -> (router.h constant, methods it serves).
ROUTES = {
    "/api/v1/health": ("ROUTE_HEALTH", ("GET", "HEAD")),
    "/api/v1/reports": ("ROUTE_REPORTS", ("GET", "HEAD")),
    "/api/v1/reports/{slug}": ("ROUTE_REPORT", ("GET", "HEAD")),
    "/api/v1/reports/{slug}/run": ("ROUTE_REPORT_RUN", ("GET", "HEAD")),
    "/api/v1/recomputations": ("ROUTE_RECOMPUTATIONS", ("GET", "HEAD", "POST")),
    "/api/v1/recomputations/{id}": ("ROUTE_RECOMPUTATION", ("GET", "HEAD")),
    "/api/v1/audit-entries": ("ROUTE_AUDIT_ENTRIES", ("GET", "HEAD")),
    "/api/v1/events": ("ROUTE_EVENTS", ("POST",)),
    "/api/v1/sms/summary": ("ROUTE_SMS_SUMMARY", ("GET", "HEAD")),
    "/api/v1/sms/operators": ("ROUTE_SMS_OPERATORS", ("GET", "HEAD")),
    "/api/v1/sms/operators/{operator_id}/metrics": ("ROUTE_SMS_OPERATOR_METRICS", ("GET", "HEAD")),
    "/api/v1/sms/accounts": ("ROUTE_SMS_ACCOUNTS", ("GET", "HEAD")),
    "/api/v1/sms/accounts/{account_id}/usage": ("ROUTE_SMS_ACCOUNT_USAGE", ("GET", "HEAD")),
    "/api/v1/openapi.json": ("ROUTE_OPENAPI", ("GET", "HEAD")),
    "/livez": ("ROUTE_LIVEZ", ("GET", "HEAD")),
    "/readyz": ("ROUTE_READYZ", ("GET", "HEAD")),
    "/metrics": ("ROUTE_METRICS", ("GET", "HEAD")),
}
NOT_YET_ROUTED_OK = {"ROUTE_METRICS"}  # documented ahead of the router (see the docstring)
SAMPLE = {"slug": "status-counts", "id": "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab",
          "operator_id": OP, "account_id": AC}

DB = None
SVC = None
DOC = None
VALIDATED = set()  # (template, method, status) validated against the document


def today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def day(n):
    return (today() - datetime.timedelta(days=n)).isoformat()


def read(rel):
    with open(os.path.join(ROOT, rel)) as f:
        return f.read()


def router_enum():
    src = read("server/router.h")
    body = re.search(r"typedef enum \{(.*?)\} route_id;", src, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    return {n for n in re.findall(r"\b(ROUTE_[A-Z0-9_]+)\b", body) if n != "ROUTE_NONE"}


def routed():
    """The ROUTES rows the router knows now."""
    enum = router_enum()
    return {t: v for t, v in ROUTES.items() if v[0] in enum}


def template_regex(template):
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)) + "$")


def concrete(template):
    return re.sub(r"\{([a-z_]+)\}", lambda m: SAMPLE[m.group(1)], template)


def resolve(node):
    """Follows local $refs until a node without $ref."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = DOC
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(node, dict) and part in node, "unresolved $ref " + ref
            node = node[part]
        seen += 1
        assert seen < 20, "$ref loop at " + ref
    return node


def documented_response(template, method, status):
    op = DOC["paths"][template][method.lower()]
    assert str(status) in op["responses"], "%s %s: status %s is not documented" % (
        method, template, status)
    return resolve(op["responses"][str(status)])


def validate_body(schema, body):
    root = dict(schema)
    root["components"] = DOC["components"]  # so "#/components/..." resolves inside the schema
    Draft202012Validator(root, format_checker=FormatChecker()).validate(body)


def check(template, method, status_got, hdrs, body, response):
    """Checks one real answer against the response object the document declares."""
    for name, header in response.get("headers", {}).items():
        header = resolve(header)
        value = hdrs.get(name.lower())
        if header.get("required"):
            assert value is not None, "%s %s %s: header %s missing" % (method, template,
                                                                         status_got, name)
        if value is not None and "schema" in header:
            Draft202012Validator(header["schema"]).validate(value)
    assert "x-request-id" in hdrs, (method, template, hdrs)
    content = response.get("content")
    if method == "HEAD" or status_got == 304:
        assert body == b"", (method, template, body[:200])
        return
    assert content, "%s %s %s: the document declares no body" % (method, template, status_got)
    ctype = hdrs.get("content-type")
    assert ctype in content, "%s %s: Content-Type %r not in %s" % (method, template, ctype,
                                                                     list(content))
    if ctype == "application/json":
        assert body.endswith(b"\n") and body.count(b"\n") == 1, body[-100:]
        validate_body(content[ctype]["schema"], json.loads(body))


def call(template, method="GET", path=None, headers=None, body=None, expect=200):
    """One request; checks the status and validates the answer; returns (headers, json|bytes)."""
    path = path or concrete(template)
    status, hdrs, raw = SVC.request(method, path, body=body, headers=headers)
    assert status == expect, "%s %s: %s (expected %s): %s" % (method, path, status, expect,
                                                              raw[:300])
    check(template, method, status, hdrs, raw, documented_response(template, method, status))
    VALIDATED.add((template, method, status))
    if raw and hdrs.get("content-type") == "application/json":
        return hdrs, json.loads(raw)
    return hdrs, raw


# ---- 1. routes ---------------------------------------------------------------------------------

def test_document_routes_equal_router_routes():
    enum = router_enum()
    unknown = enum - {v[0] for v in ROUTES.values()}
    assert not unknown, "router.h has routes this test (and the document?) lacks: %s" % unknown
    missing = {v[0] for v in ROUTES.values()} - enum - NOT_YET_ROUTED_OK
    assert not missing, "ROUTES names constants router.h does not have: %s" % missing

    # test_router.c: each path routed to a named constant matches that constant's template.
    src = read("tests/unit/test_router.c")
    pairs = re.findall(r'route\("[A-Z]+", "(/[^"]*)", &m\), ROUTER_OK\);\s*'
                       r'assert_int_equal\(m\.route, (ROUTE_[A-Z0-9_]+)\)', src)
    pairs += re.findall(r'\{"(/[^"]+)", (ROUTE_[A-Z0-9_]+)', src)
    assert len(pairs) >= 10, pairs
    by_const = {v[0]: t for t, v in ROUTES.items()}
    for path, const in pairs:
        assert const in by_const, (path, const)
        assert template_regex(by_const[const]).match(path), (
            "test_router.c routes %s to %s, whose template here is %s" % (path, const,
                                                                          by_const[const]))

    # The document: exactly the templates and methods of ROUTES.
    methods = {"get", "head", "post", "put", "delete", "options", "patch", "trace"}
    doc_routes = {p: tuple(sorted(m.upper() for m in item if m in methods))
                  for p, item in DOC["paths"].items()}
    assert set(doc_routes) == set(ROUTES), (set(doc_routes) ^ set(ROUTES))
    for template, (const, allowed) in ROUTES.items():
        assert doc_routes[template] == tuple(sorted(allowed)), (template, doc_routes[template])

    # The running router: documented paths are routed with exactly these methods.
    live = routed()
    for template, (const, allowed) in ROUTES.items():
        path = concrete(template)
        if template not in live:
            status, _, body = SVC.request("GET", path)
            assert status == 404 and json.loads(body)["error"]["message"] == \
                "route was not found", (template, status, body)
            print("note: %s is documented but not routed yet (%s)" % (template, const))
            continue
        status, hdrs, body = SVC.request("DELETE", path)
        assert status == 405 and hdrs.get("allow") == ", ".join(allowed), (template, status, hdrs)
        method = allowed[0]
        status, hdrs, body = SVC.request(method, path, headers=MGMT,
                                         body=b"{}" if method == "POST" else None)
        assert status != 405, (template, method, status)
        if status == 404:
            assert json.loads(body)["error"]["message"] != "route was not found", template
    # and a few neighbours of documented paths are not routes
    for path in ("/api/v1/openapi.json/", "/api/v1/openapi", "/openapi.json", "/api/v1/metrics",
                 "/api/v1/", "/api/v1/sms"):
        status, _, _ = SVC.request("GET", path)
        assert status == 404, path


# ---- 2. structure ------------------------------------------------------------------------------

def minify(text):
    """Removes the whitespace between JSON tokens, leaving strings alone."""
    out, in_string, escaped = [], False, False
    for c in text:
        if in_string:
            out.append(c)
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif c not in " \t\r\n":
            out.append(c)
    return "".join(out)


def walk(node, path=""):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, path + "/" + k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, "%s/%d" % (path, i))


def test_document_is_served_from_the_source_and_is_openapi_3_1():
    source = read("docs/openapi.json")
    status, hdrs, body = SVC.request("GET", "/api/v1/openapi.json")
    assert status == 200 and hdrs["content-type"] == "application/json", (status, hdrs)
    assert body == (minify(source) + "\n").encode(), "served body is not docs/openapi.json compact"
    assert json.loads(body) == json.loads(source)
    for c in b"<>&":
        assert bytes([c]) not in body, "raw %r in the document (write \\u00XX)" % chr(c)
    status, head_hdrs, head_body = SVC.request("HEAD", "/api/v1/openapi.json")
    assert (status, head_body) == (200, b"")
    assert head_hdrs["content-length"] == str(len(body))
    assert head_hdrs["content-type"] == "application/json"

    assert DOC["openapi"] == "3.1.0"
    assert DOC["info"]["title"] and DOC["info"]["version"]
    assert isinstance(DOC["paths"], dict) and DOC["paths"]
    assert {"schemas", "responses", "parameters", "headers",
            "securitySchemes"} <= set(DOC["components"])
    schemes = DOC["components"]["securitySchemes"]
    assert schemes["managementKey"] == dict(schemes["managementKey"], type="apiKey", **{
        "in": "header", "name": "X-Management-Key"})
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    for path, key in ((p, k) for p, n in walk(DOC) if isinstance(n, dict) for k in n):
        assert key not in ("nullable", "example") or "/properties/" in path, (
            "OpenAPI 3.0 keyword %s at %s" % (key, path))

    # Every $ref resolves; every schema is valid JSON Schema 2020-12.
    refs = [(p, n["$ref"]) for p, n in walk(DOC) if isinstance(n, dict) and "$ref" in n]
    assert len(refs) > 50, len(refs)
    for where, ref in refs:
        try:
            resolve({"$ref": ref})
        except AssertionError as e:
            raise AssertionError("%s at %s" % (e, where))
    schemas = [(p, n["schema"]) for p, n in walk(DOC) if isinstance(n, dict) and
               isinstance(n.get("schema"), dict)]
    schemas += [("/components/schemas/" + k, v) for k, v in DOC["components"]["schemas"].items()]
    for where, schema in schemas:
        try:
            Draft202012Validator.check_schema(schema)
        except Exception as e:
            raise AssertionError("invalid schema at %s: %s" % (where, e))

    # Operations: unique ids, declared path parameters, security, X-Request-Id on responses.
    ids = []
    management = {"/api/v1/recomputations", "/api/v1/recomputations/{id}",
                  "/api/v1/audit-entries", "/api/v1/events"}
    for template, item in DOC["paths"].items():
        names = set(re.findall(r"\{([a-z_]+)\}", template))
        for method, op in item.items():
            if method not in ("get", "head", "post"):
                continue
            ids.append(op["operationId"])
            params = [resolve(p) for p in op.get("parameters", [])]
            assert {p["name"] for p in params if p["in"] == "path"} == names, (template, method)
            assert "X-Request-Id" in {p["name"] for p in params if p["in"] == "header"}
            if template in management:
                assert op["security"] == [{"managementKey": []}, {"bearerAuth": []}], template
                assert "401" in op["responses"], (template, method)
            else:
                assert "security" not in op and "401" not in op["responses"], (template, method)
            assert {"405", "413", "500"} <= set(op["responses"]), (template, method)
            for code, response in op["responses"].items():
                response = resolve(response)
                assert "X-Request-Id" in response.get("headers", {}), (template, method, code)
                data_503 = code == "503" and template in ("/api/v1/health", "/readyz")
                if method != "head" and code[0] in "45" and not data_503:
                    schema = response["content"]["application/json"]["schema"]
                    assert "#/components/schemas/Error" in json.dumps(schema), (template, code)
    assert len(ids) == len(set(ids)), sorted(ids)
    for response in DOC["components"]["responses"].values():
        assert "X-Request-Id" in response["headers"]


# ---- 3. real answers ---------------------------------------------------------------------------

def test_health_probes_and_document_answers():
    call("/api/v1/health")
    call("/api/v1/health", "HEAD")
    call("/livez")
    assert adtest.wait_until(lambda: SVC.request("GET", "/readyz")[0] == 200, 15)
    call("/readyz")
    call("/readyz", "HEAD")
    call("/api/v1/openapi.json")
    if "/metrics" in routed():
        hdrs, text = call("/metrics")
        assert hdrs["content-type"].startswith("text/plain"), hdrs
        call("/metrics", "HEAD")


def test_report_answers():
    _, body = call("/api/v1/reports")
    assert body["meta"]["pagination"]["total"] == len(body["data"]) > 0, body
    call("/api/v1/reports", path="/api/v1/reports?sort=slug&order=desc&limit=2&offset=1")
    call("/api/v1/reports", "HEAD")
    _, body = call("/api/v1/reports/{slug}", path="/api/v1/reports/status-counts")
    assert "last_rebuilt_at" in body["data"], body  # the seed's runs
    call("/api/v1/reports/{slug}", path="/api/v1/reports/nope", expect=404)
    call("/api/v1/reports/{slug}", "HEAD", path="/api/v1/reports/nope", expect=404)

    run = "/api/v1/reports/{slug}/run"
    full = "date_from=%s&date_to=%s" % (day(95), day(0))
    for slug, extra in (("volume-by-period", ""), ("volume-by-period", "&breakdown=source"),
                        ("status-counts", ""), ("status-counts", "&breakdown=period"),
                        ("top-entities", "&limit=5&offset=3"),
                        ("top-entities", "&window=week")):
        path = "/api/v1/reports/%s/run?%s%s" % (slug, full, extra)
        hdrs, miss = call(run, path=path)
        assert miss["meta"]["cache_hit"] is False and miss["data"]["rows"], miss
        hdrs, hit = call(run, path=path)
        assert hit["meta"]["cache_hit"] is True, hit["meta"]
        assert "etag" in hdrs and "cache-control" in hdrs, hdrs
        call(run, path=path, headers={"If-None-Match": hdrs["etag"]}, expect=304)
        call(run, "HEAD", path=path)
    # a range reaching before the retained day buckets of top-entities (180 days)
    _, body = call(run, path="/api/v1/reports/top-entities/run?date_from=%s&date_to=%s"
                   % (day(200), day(150)))
    assert "retained_from" in body["meta"], body["meta"]
    for query in ("window=month", "limit=0", "offset=-1", "breakdown=entity", "date_to=2026-1-1",
                  "date_from=x", "date_from=2000-01-01"):
        call(run, path="/api/v1/reports/status-counts/run?" + query, expect=400)
    call(run, path="/api/v1/reports/nope/run", expect=404)
    call(run, "HEAD", path="/api/v1/reports/status-counts/run?window=month", expect=400)


def test_recomputation_and_audit_answers():
    call("/api/v1/recomputations", expect=401)
    call("/api/v1/recomputations", headers={"X-Management-Key": "wrong"}, expect=401)
    call("/api/v1/audit-entries", "HEAD", expect=401)
    body = json.dumps({"report_slug": "top-entities", "window": "day", "date_from": day(20),
                       "date_to": day(10), "requested_by": "openapi-test"})
    hdrs, run = call("/api/v1/recomputations", "POST", headers=dict(MGMT, **{
        "Content-Type": "application/json", "X-Request-Id": "openapi-trigger-1"}),
        body=body, expect=202)
    assert hdrs["x-request-id"] == "openapi-trigger-1"
    run_id = run["data"]["id"]
    for bad in ("{", '{"window":"day"}', '{"report_slug":"x","window":"year"}'):
        call("/api/v1/recomputations", "POST", headers=MGMT, body=bad, expect=400)
    call("/api/v1/recomputations", "POST", headers=MGMT, body='{"report_slug":"nope"}',
         expect=404)
    done = lambda: SVC.get_json("/api/v1/recomputations/" + run_id,
                                headers=MGMT)[1]["data"]["status"] == "completed"
    assert adtest.wait_until(done, 60), SVC.logs()[-2000:]
    _, got = call("/api/v1/recomputations/{id}", path="/api/v1/recomputations/" + run_id,
                  headers={"Authorization": "Bearer " + KEY})
    assert got["data"]["summary"] and got["data"]["attempts"] == 1, got
    call("/api/v1/recomputations/{id}", "HEAD", path="/api/v1/recomputations/" + run_id,
         headers=MGMT)
    call("/api/v1/recomputations/{id}", path="/api/v1/recomputations/not-a-uuid", headers=MGMT,
         expect=404)
    call("/api/v1/recomputations/{id}", path="/api/v1/recomputations/" + SAMPLE["id"],
         headers=MGMT, expect=404)
    _, runs = call("/api/v1/recomputations", headers=MGMT)
    assert run_id in [r["id"] for r in runs["data"]], runs
    call("/api/v1/recomputations", path="/api/v1/recomputations?status=completed&limit=500",
         headers=MGMT)
    call("/api/v1/recomputations", "HEAD", headers=MGMT)
    _, audit = call("/api/v1/audit-entries", headers={"Authorization": "Bearer " + KEY})
    ours = [e for e in audit["data"] if e.get("resource_id") == run_id]
    assert {e["action"] for e in ours} == {"recompute.triggered", "recompute.completed"}, ours
    assert [e["metadata"]["request_id"] for e in ours
            if e["action"] == "recompute.triggered"] == ["openapi-trigger-1"], ours
    call("/api/v1/audit-entries", path="/api/v1/audit-entries?actor=nobody", headers=MGMT)


def test_sms_answers():
    _, summary = call("/api/v1/sms/summary")
    assert summary["data"]["total_messages"] > 0, summary
    call("/api/v1/sms/summary", path="/api/v1/sms/summary?date_from=%s" % day(300))
    call("/api/v1/sms/summary", path="/api/v1/sms/summary?date_from=%s&date_to=%s"
         % (day(400), day(380)))  # nothing in range: nulls
    call("/api/v1/sms/summary", "HEAD")
    hdrs, _ = call("/api/v1/sms/summary")
    call("/api/v1/sms/summary", headers={"If-None-Match": hdrs["etag"]}, expect=304)
    _, ops = call("/api/v1/sms/operators")
    assert ops["data"], ops
    call("/api/v1/sms/operators", path="/api/v1/sms/operators?sort=p95_latency_ms&order=asc")
    call("/api/v1/sms/operators", path="/api/v1/sms/operators?sort=bad", expect=400)
    call("/api/v1/sms/operators", path="/api/v1/sms/operators?order=up", expect=400)
    metrics = "/api/v1/sms/operators/{operator_id}/metrics"
    _, m = call(metrics)
    assert m["data"]["series"], m
    _, m = call(metrics, path="/api/v1/sms/operators/%s/metrics?window=hour&date_from=%s"
                % (OP, day(1)))
    assert m["data"]["series"], m
    call(metrics, path="/api/v1/sms/operators/%s/metrics?window=week" % OP, expect=400)
    call(metrics, path="/api/v1/sms/operators/%s/metrics?window=hour&date_from=%s"
         % (OP, day(40)), expect=400)
    call(metrics, path="/api/v1/sms/operators/%s/metrics" % UNKNOWN_UUID, expect=404)
    call(metrics, path="/api/v1/sms/operators/nope/metrics", expect=404)
    call(metrics, "HEAD")
    _, acc = call("/api/v1/sms/accounts")
    assert acc["data"], acc
    call("/api/v1/sms/accounts", path="/api/v1/sms/accounts?sort=account_id&limit=3&offset=2")
    call("/api/v1/sms/accounts", path="/api/v1/sms/accounts?sort=bad", expect=400)
    usage = "/api/v1/sms/accounts/{account_id}/usage"
    _, u = call(usage)
    assert u["data"]["series"], u
    call(usage, path="/api/v1/sms/accounts/%s/usage?window=month" % AC.upper())
    call(usage, path="/api/v1/sms/accounts/%s/usage?window=year" % AC, expect=400)
    call(usage, path="/api/v1/sms/accounts/%s/usage" % UNKNOWN_UUID, expect=404)
    call(usage, "HEAD")


def test_event_ingestion_answers():
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    charge = {"subject": "billing.events", "event_id": "openapi-1",
              "event_type": "billing.message.charged", "occurred_at": now,
              "message_id": "openapi-m1", "account_id": AC, "operator_id": OP, "segments": 1,
              "cost": "0.0125"}
    batch = {"events": [charge, charge, {"subject": "billing.events", "event_id": 7},
                        {"subject": "billing.events", "event_id": "openapi-2",
                         "event_type": "billing.other", "occurred_at": now}, "text"]}
    _, got = call("/api/v1/events", "POST", headers=MGMT, body=json.dumps(batch))
    outcomes = [r["outcome"] for r in got["data"]["results"]]
    assert outcomes == ["accepted", "duplicate", "rejected", "ignored", "rejected"], got
    call("/api/v1/events", "POST", body=json.dumps(batch), expect=401)
    call("/api/v1/events", "POST", headers=MGMT, body='{"events":[]}', expect=400)
    call("/api/v1/events", "POST", headers=MGMT, body="nope", expect=400)


def test_generic_errors_validate():
    not_found = DOC["components"]["responses"]["RouteNotFound"]
    for method, path in (("GET", "/api/v1/nope"), ("DELETE", "/"), ("GET", "/api/v1/reports/"),
                         ("POST", "/api/v1/health/x")):
        status, hdrs, body = SVC.request(method, path)
        assert status == 404, (method, path, status)
        check(path, method, status, hdrs, body, resolve(not_found))
    # 405 on every documented route, validated against its operations' 405
    for template, (const, allowed) in routed().items():
        for method in ("PUT", "DELETE", "OPTIONS") + (("GET", "HEAD") if "GET" not in allowed
                                                      else ("POST",) if "POST" not in allowed
                                                      else ()):
            status, hdrs, body = SVC.request(method, concrete(template))
            assert status == 405, (template, method, status)
            response = documented_response(template, allowed[0], 405)
            check(template, method, status, hdrs, body, response)
            assert hdrs["allow"] == ", ".join(allowed)
        VALIDATED.add((template, allowed[0], 405))


def test_every_documented_get_was_validated():
    live = routed()
    for template, item in DOC["paths"].items():
        if template not in live:
            continue
        for method in item:
            if method in ("get", "post"):
                ok = {s for t, m, s in VALIDATED if t == template and m == method.upper()}
                assert ok & {200, 202}, "%s %s: no success answer validated" % (method, template)


def main():
    global DB, SVC, DOC
    adtest.require_env()
    DB = adtest.ScratchDatabase()
    try:
        SVC = adtest.Service(DB).start()
        status, hdrs, body = SVC.request("GET", "/api/v1/openapi.json")
        assert status == 200, (status, body[:300])
        DOC = json.loads(body)
        adtest.run([test_document_is_served_from_the_source_and_is_openapi_3_1,
                    test_document_routes_equal_router_routes,
                    test_health_probes_and_document_answers,
                    test_report_answers,
                    test_recomputation_and_audit_answers,
                    test_sms_answers,
                    test_event_ingestion_answers,
                    test_generic_errors_validate,
                    test_every_documented_get_was_validated])
    finally:
        if SVC is not None:
            SVC.stop()
        DB.drop()


if __name__ == "__main__":
    main()
