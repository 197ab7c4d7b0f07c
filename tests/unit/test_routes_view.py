"""`fastproxy routes` table and the /config_dump description."""

from __future__ import annotations

from pathlib import Path

import orjson

from fastproxy import table
from fastproxy.config import dump, load
from fastproxy.config.routes_view import describe_domains, render_routes

SEED = Path(__file__).resolve().parent.parent / "data" / "config" / "seed"


def seed(section: str) -> table.Config:
    result = load([str(SEED / "00-registry.yaml"), str(SEED / f"{section}.yaml")])
    assert result.config is not None, result.problems
    return result.config


def test_seed_1_1_routes_table() -> None:
    # The seed's istioctl rows for 1.1: the same names, domains, matches and virtual services.
    assert render_routes(seed("1.1-redirect-rewrite")) == (
        "NAME  DOMAINS                               MATCH      VIRTUAL SERVICE\n"
        "80    proxy, proxy.default + 1 more...      /backend*  proxy.default\n"
        "80    proxy, proxy.default + 1 more...      /*         proxy.default\n"
        "8080  demoapp, demoapp.default + 1 more...  /canary*   demoapp.default\n"
        "8080  demoapp, demoapp.default + 1 more...  /backend*  demoapp.default\n"
        "8080  demoapp, demoapp.default + 1 more...  /*         demoapp.default\n"
        "8082  backend, backend.default + 1 more...  /*\n"
    )


def test_gateway_rows_are_named_http_port() -> None:
    lines = render_routes(seed("1.5-retry")).splitlines()
    assert lines[0].split() == ["NAME", "DOMAINS", "MATCH", "VIRTUAL", "SERVICE"]
    assert lines[-1].split() == ["http.80", "fe.toptops.top", "/*", "proxy.default"]
    # every column starts at the same offset on every line
    starts = [lines[0].index(h) for h in ("DOMAINS", "MATCH", "VIRTUAL SERVICE")]
    for line in lines[1:]:
        assert all(line[s - 2 : s] == "  " and line[s] != " " for s in starts[:2])


def test_domain_collapsing_like_istioctl() -> None:
    fqdn = "reviews.default.svc.cluster.local"
    assert describe_domains([fqdn, "reviews", "reviews.default.svc", "reviews.default", fqdn + "."]) == (
        "reviews, reviews.default + 1 more..."
    )
    assert describe_domains(["fe.toptops.top"]) == "fe.toptops.top"
    assert describe_domains(["a.prod.svc.cluster.local", "a.prod.svc", "a.prod"]) == "a.prod"
    assert describe_domains(["x.com", "x.com:80", "10.0.0.1"]) == "x.com, 10.0.0.1"


def test_config_dump_is_json_and_describes_everything() -> None:
    config = seed("1.3-headers")
    data = orjson.loads(orjson.dumps(dump(config)))
    assert data["sources"] == [str(SEED / "00-registry.yaml"), str(SEED / "1.3-headers.yaml")]
    mesh, gateway = data["listeners"]
    assert (mesh["name"], mesh["kind"], gateway["name"], gateway["kind"]) == (
        "mesh",
        "mesh",
        "istio-system/proxy-gateway:80",
        "gateway",
    )
    vhost = next(v for v in mesh["virtual_hosts"] if v["name"] == "demoapp.default.svc.cluster.local:8080")
    assert "demoapp" in vhost["domains"]
    canary = vhost["routes"][0]
    assert canary["match"]["headers"] == [["x-canary", {"kind": "exact", "value": "true"}]]
    route = canary["route"]
    assert route["action"] == "route" and route["name"] == "canary"
    (dest,) = route["destinations"]
    assert dest["cluster"] == "outbound|8080|v11|demoapp.default.svc.cluster.local"
    assert dest["cluster_exists"] is True and dest["weight"] == 100
    assert dest["request_ops"] == [{"remove": [], "set": [["user-agent", "Chrome"]], "add": []}]
    assert route["retry"]["retry_on"] == [
        "connect-failure",
        "refused-stream",
        "retriable-status-codes",
        "cancelled",
        "unavailable",
    ]
    clusters = {c["name"]: c for c in data["clusters"]}
    v10 = clusters["outbound|8080|v10|demoapp.default.svc.cluster.local"]
    assert v10["lb"] == "LEAST_REQUEST" and v10["subset"] == "v10"
    assert [(e["address"], e["port"], e["labels"]["version"]) for e in v10["endpoints"]] == [
        ("127.0.0.1", 18081, "v1.0")
    ]


def test_config_dump_weights_and_redirects() -> None:
    routes_12 = orjson.loads(orjson.dumps(dump(seed("1.2-weights"))))["listeners"][0]["virtual_hosts"]
    demo = next(v for v in routes_12 if v["port"] == 8080)
    assert [d["weight"] for d in demo["routes"][0]["route"]["destinations"]] == [90, 10]
    routes_11 = orjson.loads(orjson.dumps(dump(seed("1.1-redirect-rewrite"))))["listeners"][0]["virtual_hosts"]
    demo = next(v for v in routes_11 if v["port"] == 8080)
    redirect = demo["routes"][1]["route"]
    assert redirect["action"] == "redirect"
    assert redirect["redirect"] == {
        "status": 301,
        "scheme": None,
        "authority": "backend",
        "port": 8082,
        "path": "/",
        "strip": 0,
        "prefix_rewrite": False,
    }
    assert demo["routes"][0]["route"]["rewrite"] == {"kind": 1, "strip": 7, "replacement": "/", "regex": None}
