"""Compiled records, checked field by field against traffic-semantics.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fastproxy import table
from fastproxy.config import load, loads
from fastproxy.config.compile import intersect_hosts

SEED = Path(__file__).resolve().parent.parent / "data" / "config" / "seed"
FQDN = "demoapp.default.svc.cluster.local"


def seed(section: str) -> table.Config:
    result = load([str(SEED / "00-registry.yaml"), str(SEED / f"{section}.yaml")])
    assert result.problems == []
    assert result.config is not None
    return result.config


def compile_yaml(*docs: str) -> table.Config:
    result = loads(("c.yaml", "\n---\n".join(docs)))
    assert result.problems == []
    assert result.config is not None
    return result.config


def se(
    host: str,
    ports: str = "[{number: 80, name: http, protocol: HTTP}]",
    ns: str = "default",
    name: str | None = None,
    extra: str = "",
) -> str:
    return (
        f"apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: {name or host.split('.')[0]}, "
        f"namespace: {ns}}}\nspec:\n  hosts: [{host}]\n  resolution: STATIC\n  ports: {ports}\n"
        "  endpoints:\n  - address: 10.0.0.1\n    labels: {app: a, version: v1}\n"
        "  - address: 10.0.0.2\n    labels: {app: a, version: v2}\n" + extra
    )


def resource(kind: str, name: str, ns: str, body: str) -> str:
    return (
        f"apiVersion: networking.istio.io/v1\nkind: {kind}\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{body}"
    )


def vs(name: str, body: str, ns: str = "default") -> str:
    return resource("VirtualService", name, ns, body)


def dr(name: str, body: str, ns: str = "default") -> str:
    return resource("DestinationRule", name, ns, body)


def gw(name: str, body: str, ns: str = "default") -> str:
    return (
        f"apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{body}"
    )


def routes(config: table.Config, host: bytes, port: int) -> list[table.Route]:
    vh = config.mesh.find(host, port)
    assert vh is not None, (host, port)
    return [e.route for e in vh.entries]


SVC_A = se("a.default.svc.cluster.local")


# ---------------------------------------------------------------- the seed, section by section


def test_seed_1_1_rewrite_redirect_default() -> None:
    c = seed("1.1-redirect-rewrite")
    vh = c.mesh.find(b"demoapp", 8080)
    assert vh is not None and vh.name == f"{FQDN}:8080" and vh.port == 8080
    # every name a sidecar in `default` answers to, and nothing on another port
    for host in (b"demoapp", b"demoapp.default", b"demoapp.default.svc", FQDN.encode(), FQDN.encode() + b"."):
        assert c.mesh.find(host, 8080) is vh
    assert c.mesh.find(b"demoapp", 80) is None

    canary, redirect, default = vh.entries
    assert canary.match == table.MatchSpec(uri=table.StringMatch(table.PREFIX, b"/canary"))
    assert canary.route.name == "rewrite"
    assert canary.route.virtual_service == "demoapp.default"
    assert canary.route.rewrite == table.Rewrite(kind=table.REWRITE_PREFIX, strip=7, replacement=b"/")
    assert canary.route.cumulative == (100,)
    (dest,) = canary.route.destinations
    assert dest.cluster_name == f"outbound|8080|v11|{FQDN}"
    assert dest.cluster is c.clusters[dest.cluster_name]
    assert [(e.address, e.port, e.version) for e in dest.cluster.endpoints] == [("127.0.0.1", 18082, "v1.1")]
    assert canary.route.retry == table.DEFAULT_RETRY
    assert canary.route.timeout is None and canary.route.listener_port == 8080

    assert redirect.route.action == table.ACTION_REDIRECT
    assert redirect.route.redirect == table.Redirect(
        status=301, scheme=None, authority=b"backend", port=8082, path=b"/"
    )
    assert redirect.route.destinations == ()
    assert redirect.route.path_description == "/backend*"

    assert default.match == table.MatchSpec()
    assert default.route.name == "default"
    assert [d.cluster_name for d in default.route.destinations] == [f"outbound|8080|v10|{FQDN}"]
    assert default.route.path_description == "/*"

    # proxy: port 80 service whose endpoint listens on targetPort 8080
    proxy = routes(c, b"proxy", 80)
    assert [r.action for r in proxy] == [table.ACTION_REDIRECT, table.ACTION_ROUTE]
    (pdest,) = proxy[1].destinations
    assert pdest.cluster_name == "outbound|80||proxy.default.svc.cluster.local"
    assert [(e.address, e.port) for e in pdest.cluster.endpoints] == [("127.0.0.2", 8080)]

    # backend has no VirtualService: Istio's generated default route
    (backend,) = c.mesh.find(b"backend.default", 8082).entries
    assert backend.match == table.MatchSpec()
    assert backend.route.name == "default" and backend.route.virtual_service == ""
    assert backend.route.retry is table.DEFAULT_RETRY
    assert backend.route.cumulative == (100,)
    (bdest,) = backend.route.destinations
    assert bdest.cluster_name == "outbound|8082||backend.default.svc.cluster.local"
    (ep,) = bdest.cluster.endpoints
    assert (ep.address, ep.port, ep.app, ep.version, ep.workload) == (
        "127.0.0.1",
        18083,
        "backend",
        "v3.6",
        "backendv36",
    )


def test_seed_1_2_weights() -> None:
    (route,) = routes(seed("1.2-weights"), b"demoapp", 8080)
    assert route.name == "weight-based-routing"
    assert [d.cluster_name.split("|")[2] for d in route.destinations] == ["v10", "v11"]
    assert route.cumulative == (90, 100)


def test_seed_1_3_header_operations() -> None:
    c = seed("1.3-headers")
    canary, default = c.mesh.find(b"demoapp", 8080).entries
    assert canary.match.headers == ((b"x-canary", table.StringMatch(table.EXACT, b"true")),)
    (d,) = canary.route.destinations
    assert d.request_ops == (table.HeaderOps(set=((b"user-agent", b"Chrome"),)),)
    assert d.response_ops == (table.HeaderOps(add=((b"x-canary", b"true"),)),)
    assert canary.route.response_ops == ()
    (d,) = default.route.destinations
    assert d.response_ops == (table.HeaderOps(add=((b"x-envoy", b"test"),)),)
    assert default.route.response_ops == (table.HeaderOps(add=((b"x-envoy", b"test"),)),)


def test_seed_1_4_fault() -> None:
    canary, default = routes(seed("1.4-fault"), b"demoapp", 8080)
    assert canary.fault == table.Fault(abort_status=555, abort_ppm=200_000)
    assert default.fault == table.Fault(delay=3.0, delay_ppm=200_000)


def test_seed_1_5_gateway_timeout_retry() -> None:
    c = seed("1.5-retry")
    (server,) = c.gateways
    assert (server.port, server.bind, server.https_redirect) == (80, None, False)
    assert server.listener.name == "istio-system/proxy-gateway:80"
    assert server.listener.kind == table.LISTENER_GATEWAY
    vh = server.listener.find(b"fe.toptops.top", 0)
    assert vh is not None and vh.domains == ("fe.toptops.top",)
    assert server.listener.find(b"other.top", 0) is None
    (entry,) = vh.entries
    r = entry.route
    assert r.timeout == 1.0 and r.listener_port == 80
    assert r.retry == table.RetryPolicy(
        attempts=5,
        retry_on=table.RETRY_5XX | table.RETRY_CONNECT_FAILURE | table.RETRY_REFUSED_STREAM,
        per_try_timeout=1.0,
    )
    assert [d.cluster_name for d in r.destinations] == ["outbound|80||proxy.default.svc.cluster.local"]
    # the VirtualService is bound to the gateway only: sidecars keep the default route
    assert c.mesh.find(b"fe.toptops.top", 80) is None
    assert routes(c, b"proxy", 80)[0].virtual_service == ""


def test_seed_1_6_mirror() -> None:
    (route,) = routes(seed("1.6-mirror"), b"demoapp", 8080)
    (mirror,) = route.mirrors
    assert mirror.ppm == 1_000_000
    assert mirror.destination.cluster_name == f"outbound|8080|v11|{FQDN}"
    assert mirror.destination.cluster is not None


# ---------------------------------------------------------------- destinations and weights


def test_weight_zero_entries_dropped_and_single_destination_gets_100() -> None:
    c = compile_yaml(
        SVC_A,
        vs(
            "a",
            "  hosts: [a]\n  http:\n  - match: [{uri: {prefix: /x}}]\n    route:\n"
            "    - {destination: {host: a}, weight: 0}\n    - {destination: {host: b}, weight: 30}\n"
            "    - {destination: {host: c}, weight: 70}\n  - route: [{destination: {host: a}, weight: 0}]\n",
        ),
    )
    first, second = routes(c, b"a", 80)
    assert [d.cluster_name for d in first.destinations] == [
        "outbound|80||b.default.svc.cluster.local",
        "outbound|80||c.default.svc.cluster.local",
    ]
    assert first.cumulative == (30, 100)
    assert [d.cluster for d in first.destinations] == [None, None]  # unknown services: 503 NC at runtime
    assert second.cumulative == (100,)


def test_destination_port_explicit_only_port_or_listener_port() -> None:
    two_ports = "[{number: 8080, name: http-a}, {number: 9090, name: http-b}]"
    c = compile_yaml(
        se("multi.default.svc.cluster.local", two_ports),
        SVC_A,
        vs(
            "a",
            "  hosts: [a]\n  http:\n  - match: [{uri: {prefix: /e}}]\n"
            "    route: [{destination: {host: multi, port: {number: 9090}}}]\n"
            "  - match: [{uri: {prefix: /l}}]\n    route: [{destination: {host: multi}}]\n"
            "  - route: [{destination: {host: a}}]\n",
        ),
        vs("m", "  hosts: [multi]\n  http:\n  - route: [{destination: {host: a}}]\n"),
    )
    explicit, listener, only = routes(c, b"a", 80)
    assert explicit.destinations[0].cluster_name == "outbound|9090||multi.default.svc.cluster.local"
    assert listener.destinations[0].cluster_name == "outbound|80||multi.default.svc.cluster.local"
    assert listener.destinations[0].cluster is None
    assert only.destinations[0].cluster_name == "outbound|80||a.default.svc.cluster.local"
    # a destination with no port from a 9090 route table picks the service's only port
    (r,) = routes(c, b"multi", 9090)
    assert r.destinations[0].cluster_name == "outbound|80||a.default.svc.cluster.local"


def test_missing_subset_has_no_cluster() -> None:
    c = compile_yaml(SVC_A, vs("a", "  hosts: [a]\n  http:\n  - route: [{destination: {host: a, subset: nope}}]\n"))
    (d,) = routes(c, b"a", 80)[0].destinations
    assert d.cluster_name == "outbound|80|nope|a.default.svc.cluster.local" and d.cluster is None


# ---------------------------------------------------------------- header operations (5.1, 5.2)

HEADERS_VS = """\
  hosts: [a]
  http:
  - headers:
      request:
        set: {X-Route: r, x-both: route, x-empty: ""}
        add: {x-add: r}
        remove: [x-gone, host]
      response:
        set: {x-resp: route}
    route:
"""
DEST_HEADERS = """\
      headers:
        request:
          set: {x-both: dest, Host: dest.example}
          add: {x-dadd: d}
          remove: [x-dgone]
        response:
          set: {x-resp: dest}
"""


def test_single_destination_header_precedence() -> None:
    body = HEADERS_VS + "    - destination: {host: a}\n" + DEST_HEADERS
    (r,) = routes(compile_yaml(SVC_A, vs("a", body)), b"a", 80)
    (d,) = r.destinations
    # one list: all removes, route set/add, then destination set/add -> destination `set` wins
    assert d.request_ops == (
        table.HeaderOps(
            remove=(b"x-gone", b"x-dgone"),
            set=((b"x-both", b"route"), (b"x-route", b"r")),
            add=((b"x-add", b"r"),),
        ),
        table.HeaderOps(set=((b"x-both", b"dest"),), add=((b"x-dadd", b"d"),)),
    )
    assert d.response_ops == (
        table.HeaderOps(set=((b"x-resp", b"route"),)),
        table.HeaderOps(set=((b"x-resp", b"dest"),)),
    )
    assert d.authority == b"dest.example"  # the route sets no authority, so the destination's applies
    assert r.response_ops == (table.HeaderOps(set=((b"x-resp", b"route"),)),)


def test_weighted_destinations_header_precedence() -> None:
    body = (
        HEADERS_VS.replace("set: {X-Route", "set: {':authority': route.example, X-Route")
        + "    - destination: {host: a}\n      weight: 50\n"
        + DEST_HEADERS
        + "    - destination: {host: b}\n      weight: 50\n"
    )
    (r,) = routes(compile_yaml(SVC_A, vs("a", body)), b"a", 80)
    d, other = r.destinations
    route_ops = table.HeaderOps(
        remove=(b"x-gone",), set=((b"x-both", b"route"), (b"x-route", b"r")), add=((b"x-add", b"r"),)
    )
    # destination parser first, route parser last -> the route's `set` wins
    assert d.request_ops == (
        table.HeaderOps(remove=(b"x-dgone",), set=((b"x-both", b"dest"),), add=((b"x-dadd", b"d"),)),
        route_ops,
    )
    assert other.request_ops == (route_ops,)
    assert d.response_ops == (
        table.HeaderOps(set=((b"x-resp", b"dest"),)),
        table.HeaderOps(set=((b"x-resp", b"route"),)),
    )
    assert d.authority == other.authority == b"route.example"  # route-level authority always wins


def test_rewrite_authority_becomes_destination_authority() -> None:
    body = "  hosts: [a]\n  http:\n  - rewrite: {authority: new.example}\n    route: [{destination: {host: a}}]\n"
    (r,) = routes(compile_yaml(SVC_A, vs("a", body)), b"a", 80)
    assert r.rewrite is None
    assert r.destinations[0].authority == b"new.example"


def test_percent_escape_in_header_value() -> None:
    body = (
        "  hosts: [a]\n  http:\n  - route: [{destination: {host: a}}]\n    headers: {request: {add: {x-p: '50%%'}}}\n"
    )
    (r,) = routes(compile_yaml(SVC_A, vs("a", body)), b"a", 80)
    assert r.destinations[0].request_ops == (table.HeaderOps(add=((b"x-p", b"50%"),)),)


# ---------------------------------------------------------------- rewrite / redirect / direct response


def rule_routes(rules: str, *extra: str) -> list[table.Route]:
    return routes(compile_yaml(SVC_A, *extra, vs("a", "  hosts: [a]\n  http:\n" + rules)), b"a", 80)


def test_rewrite_strip_per_match_kind() -> None:
    rs = rule_routes(
        "  - match: [{uri: {prefix: /api/}}, {uri: {exact: /foo}}, {uri: {regex: '/r.*'}},\n"
        "            {headers: {x: {exact: y}}}]\n"
        "    rewrite: {uri: /v2}\n    route: [{destination: {host: a}}]\n"
    )
    assert [(r.rewrite.strip, r.rewrite.replacement) for r in rs] == [
        (5, b"/v2"),
        (-1, b"/v2"),
        (-1, b"/v2"),
        (1, b"/v2"),
    ]
    assert [r.path_description for r in rs] == ["/api/*", "/foo", "regex /r.*", "/*"]


def test_uri_regex_rewrite_uses_python_group_syntax() -> None:
    (r,) = rule_routes(
        "  - rewrite: {uriRegexRewrite: {match: '^/common/?(.*)', rewrite: '/\\1/x\\\\y'}}\n"
        "    route: [{destination: {host: a}}]\n"
    )
    rw = r.rewrite
    assert rw.kind == table.REWRITE_REGEX
    assert rw.regex.sub(rw.replacement, b"/common/api") == b"/api/x\\y"


@pytest.mark.parametrize(
    ("redirect", "expected"),
    [
        ("{uri: /new}", table.Redirect(301, None, None, None, b"/new")),
        ("{uri: /n, redirectCode: 308, scheme: https}", table.Redirect(308, b"https", None, None, b"/n")),
        ("{authority: b, derivePort: FROM_REQUEST_PORT}", table.Redirect(301, None, b"b", None, None)),
        ("{scheme: https, derivePort: FROM_REQUEST_PORT}", table.Redirect(301, b"https", None, 80, None)),
        ("{scheme: https, port: 443}", table.Redirect(301, b"https", None, None, None)),
        ("{port: 80}", table.Redirect(301, None, None, None, None)),
    ],
)
def test_redirect_records(redirect: str, expected: table.Redirect) -> None:
    (r,) = rule_routes(f"  - redirect: {redirect}\n")
    assert r.action == table.ACTION_REDIRECT and r.redirect == expected


def test_derive_port_uses_the_listener_port() -> None:
    c = compile_yaml(
        se("a.default.svc.cluster.local", "[{number: 8085, name: http}]"),
        vs("a", "  hosts: [a]\n  http:\n  - redirect: {derivePort: FROM_REQUEST_PORT, uri: /x}\n"),
    )
    assert routes(c, b"a", 8085)[0].redirect.port == 8085


def test_redirect_prefix_rewrite() -> None:
    (r,) = rule_routes("  - match: [{uri: {prefix: /foo/}}]\n    redirect: {prefixRewrite: /}\n")
    assert r.redirect == table.Redirect(301, None, None, None, b"/", strip=5, prefix_rewrite=True)


def test_direct_response_bodies() -> None:
    a, b, c = rule_routes(
        "  - match: [{uri: {exact: /s}}]\n    directResponse: {status: 503, body: {string: down}}\n"
        "  - match: [{uri: {exact: /b}}]\n    directResponse: {status: 200, body: {bytes: aGk=}}\n"
        "  - directResponse: {status: 204}\n    headers: {response: {set: {content-type: application/json}}}\n"
    )
    assert (a.action, a.direct) == (table.ACTION_DIRECT, table.DirectResponse(503, b"down"))
    assert b.direct == table.DirectResponse(200, b"hi")
    assert c.direct == table.DirectResponse(204, b"")
    assert c.response_ops == (table.HeaderOps(set=((b"content-type", b"application/json"),)),)


# ---------------------------------------------------------------- retries, faults, mirrors, cors


def test_retry_policies() -> None:
    rs = rule_routes(
        "  - match: [{uri: {prefix: /0}}]\n    retries: {attempts: 0}\n    route: [{destination: {host: a}}]\n"
        "  - match: [{uri: {prefix: /c}}]\n    retries: {attempts: 3, retryOn: 'gateway-error,503,425', backoff: 100ms,"
        " retryIgnorePreviousHosts: false}\n    route: [{destination: {host: a}}]\n"
        "  - match: [{uri: {prefix: /d}}]\n    retries: {attempts: 1}\n    route: [{destination: {host: a}}]\n"
    )
    assert rs[0].retry is table.NO_RETRY
    assert rs[1].retry == table.RetryPolicy(
        attempts=3,
        retry_on=table.RETRY_GATEWAY_ERROR | table.RETRY_RETRIABLE_STATUS_CODES,
        retriable_codes=frozenset({503, 425}),
        backoff_base=0.1,
        backoff_max=1.0,
        retry_other_hosts=False,
    )
    assert rs[2].retry == table.RetryPolicy(attempts=1, retry_on=table.DEFAULT_RETRY_ON)


def test_consistent_hash_turns_off_previous_hosts() -> None:
    hashing = dr(
        "a", "  host: a\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: {httpHeaderName: X-User}\n"
    )
    (r,) = rule_routes("  - route: [{destination: {host: a}}]\n", hashing)
    assert r.retry == table.RetryPolicy(attempts=2, retry_on=table.DEFAULT_RETRY_ON, retry_other_hosts=False)
    cluster = r.destinations[0].cluster
    assert cluster.lb == table.LB_CONSISTENT_HASH
    assert cluster.hash == table.HashPolicy(header=b"x-user")


def test_fault_percentages() -> None:
    a, b = rule_routes(
        "  - match: [{uri: {prefix: /a}}]\n"
        "    fault: {abort: {httpStatus: 503, percent: 30}, delay: {fixedDelay: 1.5s}}\n"
        "    route: [{destination: {host: a}}]\n"
        "  - fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 0.1}}}\n"
        "    route: [{destination: {host: a}}]\n"
    )
    assert a.fault == table.Fault(delay=1.5, delay_ppm=0, abort_status=503, abort_ppm=300_000)
    assert b.fault == table.Fault(abort_grpc="UNAVAILABLE", abort_ppm=1000)


def test_mirrors_and_percentages() -> None:
    a, b, c = rule_routes(
        "  - match: [{uri: {prefix: /z}}]\n    mirror: {host: m}\n    mirrorPercentage: {value: 0}\n"
        "    route: [{destination: {host: a}}]\n"
        "  - match: [{uri: {prefix: /p}}]\n    mirror: {host: m}\n    mirrorPercentage: {value: 12.5}\n"
        "    headers: {request: {set: {x-m: '1'}}}\n    route: [{destination: {host: a}}]\n"
        "  - mirrors: [{destination: {host: m}}, {destination: {host: n}, percentage: {value: 50}}]\n"
        "    route: [{destination: {host: a}}]\n"
    )
    assert a.mirrors == ()
    (m,) = b.mirrors
    assert m.ppm == 125_000
    assert m.destination.cluster_name == "outbound|80||m.default.svc.cluster.local"
    assert m.destination.request_ops == b.destinations[0].request_ops == (table.HeaderOps(set=((b"x-m", b"1"),)),)
    assert [(x.destination.cluster_name.split("|")[3], x.ppm) for x in c.mirrors] == [
        ("m.default.svc.cluster.local", 1_000_000),
        ("n.default.svc.cluster.local", 500_000),
    ]


def test_cors_policy() -> None:
    (r,) = rule_routes(
        "  - corsPolicy:\n      allowOrigins: [{exact: 'https://a.com'}, {regex: 'https://.*\\.b\\.com'}]\n"
        "      allowMethods: [POST, GET]\n      allowHeaders: [X-Foo-Bar, X-Foo-Baz]\n      maxAge: 24h\n"
        "      allowCredentials: true\n      unmatchedPreflights: IGNORE\n    route: [{destination: {host: a}}]\n"
    )
    cors = r.cors
    assert cors.allow_origins[0] == table.StringMatch(table.EXACT, b"https://a.com")
    assert cors.allow_origins[1].regex.fullmatch(b"https://x.b.com")
    assert (cors.allow_methods, cors.allow_headers, cors.expose_headers) == (b"POST,GET", b"X-Foo-Bar,X-Foo-Baz", None)
    assert (cors.max_age, cors.allow_credentials, cors.forward_unmatched_preflights) == (b"86400", True, False)


# ---------------------------------------------------------------- matching and route order


def test_match_spec_conversion() -> None:
    c = compile_yaml(
        SVC_A,
        vs(
            "a",
            "  hosts: [a]\n  http:\n  - name: r\n    match:\n    - name: m\n      uri: {prefix: /API}\n"
            "      ignoreUriCase: true\n      method: {exact: GET}\n      authority: {regex: 'a(:80)?'}\n"
            "      headers: {x-k: {}}\n      withoutHeaders: {x-no: {regex: '*'}}\n"
            "      queryParams: {Q: {exact: '1'}}\n    route: [{destination: {host: a}}]\n",
        ),
    )
    (entry,) = [e for e in c.mesh.find(b"a", 80).entries if e.route.name == "r.m"]
    ms = entry.match
    assert ms.uri == table.StringMatch(table.PREFIX, b"/api") and ms.ignore_uri_case
    assert ms.method == table.StringMatch(table.EXACT, b"GET")
    assert ms.authority.kind == table.REGEX and ms.authority.regex.fullmatch(b"a:80")
    assert ms.headers == ((b"x-k", table.StringMatch(table.PRESENT)),)
    assert ms.without_headers == ((b"x-no", table.StringMatch(table.PRESENT)),)
    assert ms.query_params == ((b"Q", table.StringMatch(table.EXACT, b"1")),)
    assert entry.route.path_description == "/API*"


def test_catch_all_truncation() -> None:
    rs = rule_routes(
        "  - name: one\n"
        "    match: [{uri: {prefix: /x}, headers: {h: {exact: v}}}, {uri: {prefix: /}}, {uri: {prefix: /y}}]\n"
        "    route: [{destination: {host: a}}]\n"
        "  - name: two\n    route: [{destination: {host: a}}]\n"
    )
    assert [(r.name, r.path_description) for r in rs] == [("one", "/x*"), ("one", "/*")]


def test_method_condition_is_not_a_catch_all() -> None:
    rs = rule_routes(
        "  - name: one\n    match: [{method: {exact: GET}}]\n    route: [{destination: {host: a}}]\n"
        "  - name: two\n    route: [{destination: {host: a}}]\n  - name: three\n    route: [{destination: {host: a}}]\n"
    )
    assert [r.name for r in rs] == ["one", "two"]


def test_port_aware_vhosts_and_match_port() -> None:
    two_ports = (
        "[{number: 8080, name: http-a}, {number: 9090, name: http-b}, {number: 5432, name: tcp-db, protocol: TCP}]"
    )
    c = compile_yaml(
        se("s.default.svc.cluster.local", two_ports),
        vs(
            "s",
            "  hosts: [s]\n  http:\n  - match: [{port: 9090, uri: {prefix: /only9090}}]\n"
            "    route: [{destination: {host: s, port: {number: 9090}}}]\n",
        ),
    )
    on9090 = routes(c, b"s", 9090)
    assert [(r.virtual_service, r.path_description) for r in on9090] == [("s.default", "/only9090*")]
    # nothing left for 8080 from the VirtualService: Istio's default route
    (r8080,) = routes(c, b"s.default", 8080)
    assert (
        r8080.virtual_service == ""
        and r8080.destinations[0].cluster_name == "outbound|8080||s.default.svc.cluster.local"
    )
    assert c.mesh.find(b"s", 5432) is None and c.mesh.find(b"s", 80) is None
    assert "outbound|5432||s.default.svc.cluster.local" not in c.clusters


def test_match_gateways_select_blocks_per_listener() -> None:
    c = compile_yaml(
        SVC_A,
        gw("g", "  servers: [{port: {number: 8000, protocol: HTTP}, hosts: ['*']}]\n"),
        vs(
            "a",
            "  hosts: [a]\n  gateways: [mesh, g]\n  http:\n"
            "  - match: [{uri: {prefix: /m}, gateways: [mesh]}, {uri: {prefix: /g}, gateways: [default/g]}]\n"
            "    route: [{destination: {host: a}}]\n  - match: [{sourceLabels: {app: x}}]\n"
            "    route: [{destination: {host: a}}]\n  - match: [{sourceNamespace: other}]\n"
            "    route: [{destination: {host: a}}]\n",
        ),
    )
    assert [r.path_description for r in routes(c, b"a", 80)] == ["/m*"]
    (server,) = c.gateways
    vh = server.listener.find(b"a.default.svc.cluster.local", 0)
    assert [e.route.path_description for e in vh.entries] == ["/g*"]
    assert [e.route.listener_port for e in vh.entries] == [8000]


# ---------------------------------------------------------------- hosts


def test_short_names_expand_in_the_resource_namespace() -> None:
    c = compile_yaml(
        se("reviews.prod.svc.cluster.local", ns="prod"),
        vs(
            "r",
            "  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}, weight: 1}, {destination: {host: "
            "ratings.prod}, weight: 0}]\n",
            ns="prod",
        ),
    )
    (r,) = routes(c, b"reviews.prod", 80)
    assert r.virtual_service == "r.prod"
    assert [d.cluster_name for d in r.destinations] == ["outbound|80||reviews.prod.svc.cluster.local"]
    vh = c.mesh.find(b"reviews.prod", 80)
    assert c.mesh.find(b"reviews", 80) is None  # the bare name only for namespace default
    assert vh.domains == (
        "reviews.prod.svc.cluster.local",
        "reviews.prod.svc",
        "reviews.prod",
        "reviews.prod.svc.cluster.local.",
    )


def test_dotted_destination_is_literal() -> None:
    (r,) = rule_routes("  - route: [{destination: {host: b.default}}]\n")
    assert r.destinations[0].cluster_name == "outbound|80||b.default"


def test_non_registry_host_only_on_port_80() -> None:
    two = "[{number: 80, name: http}, {number: 8080, name: http-alt}]"
    c = compile_yaml(
        se("a.default.svc.cluster.local", two),
        vs("b", "  hosts: [bookinfo.com]\n  http:\n  - route: [{destination: {host: a}}]\n"),
    )
    vh = c.mesh.find(b"bookinfo.com", 80)
    assert vh is not None and vh.name == "bookinfo.com:80" and vh.domains == ("bookinfo.com",)
    assert c.mesh.find(b"bookinfo.com", 8080) is None
    assert vh.entries[0].route.listener_port == 80


def test_oldest_virtual_service_wins_at_the_mesh() -> None:
    result = loads(
        (
            "c.yaml",
            "\n---\n".join(
                [
                    SVC_A,
                    vs("first", "  hosts: [a]\n  http:\n  - route: [{destination: {host: a}}]\n"),
                    vs("second", "  hosts: [a, b.example]\n  http:\n  - route: [{destination: {host: a}}]\n"),
                ]
            ),
        )
    )
    c = result.config
    assert [r.virtual_service for r in routes(c, b"a", 80)] == ["first.default"]
    assert [r.virtual_service for r in routes(c, b"b.example", 80)] == ["second.default"]
    assert any("already routed by VirtualService default/first" in w for w in result.warnings)


def test_most_specific_wildcard_virtual_service() -> None:
    c = compile_yaml(
        se("api.example.com", name="api"),
        se("web.shop.example.com", name="web"),
        vs("broad", "  hosts: ['*.example.com']\n  http:\n  - route: [{destination: {host: api.example.com}}]\n"),
        vs("narrow", "  hosts: ['*.shop.example.com']\n  http:\n  - route: [{destination: {host: api.example.com}}]\n"),
    )
    assert routes(c, b"api.example.com", 80)[0].virtual_service == "broad.default"
    assert routes(c, b"web.shop.example.com", 80)[0].virtual_service == "narrow.default"
    # hosts outside the registry fall to the suffix wildcards, longest first
    assert routes(c, b"x.shop.example.com", 80)[0].virtual_service == "narrow.default"
    assert routes(c, b"x.example.com", 80)[0].virtual_service == "broad.default"
    assert c.mesh.find(b"example.com", 80) is None


# ---------------------------------------------------------------- gateways


def test_gateway_merges_virtual_services_with_catch_alls_last() -> None:
    server = "  servers: [{port: {number: 80, protocol: HTTP}, hosts: ['shop.example.com', 'ops/admin.example.com']}]\n"
    c = compile_yaml(
        SVC_A,
        gw("edge", server, ns="istio-system"),
        gw("other", "  servers: [{port: {number: 80, protocol: HTTP}, hosts: ['*']}]\n"),
        vs(
            "old",
            "  hosts: [shop.example.com]\n  gateways: [istio-system/edge]\n  http:\n"
            "  - match: [{uri: {prefix: /}}]\n    route: [{destination: {host: a}}]\n",
        ),
        vs(
            "new",
            "  hosts: [shop.example.com, admin.example.com]\n  gateways: [istio-system/edge]\n  http:\n"
            "  - match: [{uri: {prefix: /api}}]\n    route: [{destination: {host: a}}]\n",
        ),
        vs("any", "  hosts: ['*']\n  gateways: [other]\n  http:\n  - route: [{destination: {host: a}}]\n"),
    )
    (server80,) = c.gateways  # both Gateways' port-80 servers share one listener
    listener = server80.listener
    assert listener.name == "istio-system/edge:80"
    shop = listener.find(b"shop.example.com", 0)
    assert [(e.route.virtual_service, e.route.path_description) for e in shop.entries] == [
        ("new.default", "/api*"),
        ("old.default", "/*"),
    ]
    # admin.example.com is reserved for VirtualServices in namespace ops
    assert listener.find(b"admin.example.com", 0) is listener.catch_all[0]
    assert [e.route.virtual_service for e in listener.catch_all[0].entries] == ["any.default"]


def test_host_intersection() -> None:
    assert intersect_hosts("*.example.com", "a.example.com") == "a.example.com"
    assert intersect_hosts("a.example.com", "*.example.com") == "a.example.com"
    assert intersect_hosts("*", "*.example.com") == "*.example.com"
    assert intersect_hosts("*.example.com", "*.a.example.com") == "*.a.example.com"
    assert intersect_hosts("*.example.com", "example.com") is None
    assert intersect_hosts("a.com", "b.com") is None


def test_gateway_server_wildcard_host_gives_the_virtual_service_host() -> None:
    c = compile_yaml(
        SVC_A,
        gw("g", "  servers: [{port: {number: 8080, protocol: HTTP}, hosts: ['*.example.com']}]\n"),
        vs(
            "v",
            "  hosts: [a.example.com, other.org]\n  gateways: [g]\n  http:\n  - route: [{destination: {host: a}}]\n",
        ),
    )
    (server,) = c.gateways
    assert server.listener.find(b"a.example.com", 0).name == "a.example.com:8080"
    assert server.listener.find(b"b.example.com", 0) is None
    assert server.listener.find(b"other.org", 0) is None


def test_gateway_skips_non_http_servers_with_a_warning() -> None:
    result = loads(
        (
            "g.yaml",
            gw(
                "g",
                "  servers:\n  - port: {number: 443, protocol: HTTPS}\n    hosts: ['*']\n"
                "  - port: {number: 80, protocol: HTTP}\n    hosts: ['*']\n"
                "    tls: {httpsRedirect: true}\n",
            ),
        )
    )
    assert [(g.port, g.https_redirect) for g in result.config.gateways] == [(80, True)]
    assert result.warnings == [
        "g.yaml:1: Gateway default/g: spec.servers[0]: protocol HTTPS on port 443 is not served "
        "(fastproxy serves HTTP servers only)"
    ]


# ---------------------------------------------------------------- registry and DestinationRules


def test_endpoint_port_precedence_and_workload_entries() -> None:
    entry = se(
        "w.default.svc.cluster.local",
        "[{number: 80, name: http, targetPort: 8000}, {number: 81, name: http-b}]",
    ).replace("  endpoints:\n  - address: 10.0.0.1\n", "  endpoints:\n  - address: 10.0.0.1\n    ports: {http: 9000}\n")
    c = compile_yaml(entry)
    assert [(e.address, e.port) for e in c.clusters["outbound|80||w.default.svc.cluster.local"].endpoints] == [
        ("10.0.0.1", 9000),
        ("10.0.0.2", 8000),
    ]
    assert [(e.address, e.port) for e in c.clusters["outbound|81||w.default.svc.cluster.local"].endpoints] == [
        ("10.0.0.1", 81),
        ("10.0.0.2", 81),
    ]

    selected = compile_yaml(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: s}\nspec:\n  hosts: [s.internal]\n"
        "  ports: [{number: 80, name: http}]\n  resolution: STATIC\n  workloadSelector: {labels: {app: s}}\n",
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: s-vm1}\nspec:\n  address: 10.1.1.1\n"
        "  labels: {app: s, version: v2}\n  weight: 3\n",
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: s-vm2, namespace: other}\nspec:\n"
        "  address: 10.1.1.2\n  labels: {app: s}\n",
    )
    (ep,) = selected.clusters["outbound|80||s.internal"].endpoints
    assert (ep.address, ep.port, ep.weight, ep.app, ep.version, ep.workload) == ("10.1.1.1", 80, 3, "s", "v2", "s-vm1")


def test_dns_without_endpoints_uses_the_host() -> None:
    c = compile_yaml(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: h}\nspec:\n  hosts: [httpbin.org]\n"
        "  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n",
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: n}\nspec:\n  hosts: [none.org]\n"
        "  ports: [{number: 80, name: http, protocol: HTTP}]\n",
    )
    assert [(e.address, e.port, e.app) for e in c.clusters["outbound|80||httpbin.org"].endpoints] == [
        ("httpbin.org", 80, "unknown")
    ]
    assert c.clusters["outbound|80||none.org"].endpoints == ()
    assert c.mesh.find(b"httpbin.org", 80).domains == ("httpbin.org",)


DR_MERGE = """\
  host: a
  trafficPolicy:
    loadBalancer: {simple: ROUND_ROBIN}
    connectionPool:
      tcp: {maxConnections: 7, connectTimeout: 250ms}
      http: {http1MaxPendingRequests: 3}
    outlierDetection: {consecutive5xxErrors: 2, maxEjectionPercent: 100}
    portLevelSettings:
    - port: {number: 8080}
      connectionPool:
        http: {maxRequestsPerConnection: 1}
  subsets:
  - name: plain
    labels: {version: v1}
  - name: own-pool
    labels: {version: v2}
    trafficPolicy:
      connectionPool:
        http: {http2MaxRequests: 9}
  - name: port-level
    trafficPolicy:
      loadBalancer: {simple: RANDOM}
      portLevelSettings:
      - port: {number: 80}
        outlierDetection: {interval: 1s}
"""


def test_destination_rule_merge_rules() -> None:
    ports = "[{number: 80, name: http}, {number: 8080, name: http-alt}]"
    c = compile_yaml(se("a.default.svc.cluster.local", ports), dr("a", DR_MERGE))
    name = "outbound|{}|{}|a.default.svc.cluster.local"
    top = c.clusters[name.format(80, "")]
    assert top.lb == table.LB_ROUND_ROBIN
    assert top.pool == table.ConnectionPoolPolicy(max_connections=7, connect_timeout=0.25, http1_max_pending=3)
    assert top.outlier == table.OutlierPolicy(consecutive_5xx=2, max_ejection_percent=100)
    assert len(top.endpoints) == 2
    # port-level settings replace the whole top-level policy: unset blocks fall back to defaults
    port_level = c.clusters[name.format(8080, "")]
    assert port_level.lb == table.LB_LEAST_REQUEST and port_level.outlier is None
    assert port_level.pool == table.ConnectionPoolPolicy(max_requests_per_connection=1)
    # a subset without a policy inherits; its labels pick endpoints
    plain = c.clusters[name.format(80, "plain")]
    assert (plain.lb, plain.pool, plain.outlier) == (top.lb, top.pool, top.outlier)
    assert [e.version for e in plain.endpoints] == ["v1"]
    # a subset block replaces the parent's block whole: no tcp settings survive
    own = c.clusters[name.format(80, "own-pool")]
    assert own.pool == table.ConnectionPoolPolicy(max_requests=9)
    assert (own.lb, own.outlier) == (top.lb, top.outlier)
    # a subset port-level entry replaces all blocks, even unset ones
    subset_port = c.clusters[name.format(80, "port-level")]
    assert subset_port.lb == table.LB_LEAST_REQUEST
    assert subset_port.pool == table.ConnectionPoolPolicy()
    assert subset_port.outlier == table.OutlierPolicy(interval=1.0)
    assert len(subset_port.endpoints) == 2
    # on the other port the subset's own top-level policy applies over the 8080 port-level base
    other = c.clusters[name.format(8080, "port-level")]
    assert other.lb == table.LB_RANDOM and other.pool == table.ConnectionPoolPolicy(max_requests_per_connection=1)


def test_several_destination_rules_merge_subsets_first_policy_wins() -> None:
    c = compile_yaml(
        SVC_A,
        dr(
            "one",
            "  host: a\n  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n"
            "  subsets: [{name: s1, labels: {version: v1}}]\n",
        ),
        dr(
            "two",
            "  host: a.default.svc.cluster.local\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n"
            "  subsets: [{name: s1, labels: {version: v2}}, {name: s2, labels: {version: v2}}]\n",
        ),
    )
    name = "outbound|80|{}|a.default.svc.cluster.local"
    assert c.clusters[name.format("")].lb == table.LB_RANDOM
    assert [e.version for e in c.clusters[name.format("s1")].endpoints] == ["v1"]
    assert [e.version for e in c.clusters[name.format("s2")].endpoints] == ["v2"]


def test_regexes_compile_for_bytes_fullmatch() -> None:
    (r,) = rule_routes("  - match: [{uri: {regex: '/u/[0-9]+'}}]\n    route: [{destination: {host: a}}]\n")
    assert r.path_description == "regex /u/[0-9]+"


def test_matcher_is_built_over_the_entries() -> None:
    vh = seed("1.1-redirect-rewrite").mesh.find(b"demoapp", 8080)
    hits = [
        vh.matcher.match(b"GET", p, b"demoapp:8080", b"http", [], 8080) for p in (b"/canary?x", b"/backend/x", b"/")
    ]
    assert hits == [0, 1, 2]
    assert isinstance(vh.entries[0].match.uri, table.StringMatch)
    assert re.compile(b"x") is not None
