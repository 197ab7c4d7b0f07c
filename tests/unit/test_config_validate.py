"""Problem lines for bad configs: exact FILE:LINE, resource, field path and message."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastproxy.config import load, loads
from fastproxy.errors import ConfigError

DATA = Path(__file__).resolve().parent.parent / "data" / "config"

HEAD = "apiVersion: networking.istio.io/v1\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n"


def problems(kind: str, name: str, spec: str, file: str = "x.yaml") -> list[str]:
    result = loads((file, HEAD.format(kind=kind, name=name) + spec))
    assert result.config is None or not result.problems
    return result.problems


def test_bad_virtual_service_file_reports_every_problem_in_line_order() -> None:
    path = str(DATA / "bad" / "vs.yaml")
    result = load([path])
    assert result.config is None
    where = f"{path}:"
    got = [line.removeprefix(where) for line in result.problems]
    vs = "VirtualService default/demoapp"
    assert got == [
        f"15: {vs}: spec.http[0].route[1].weight: must be >= 0",
        f'17: {vs}: spec.http[0].retries: unknown field "retryon"',
        f"18: {vs}: spec.http[0].retries.attempts: expected integer, got string",
        f"19: {vs}: spec.http[0].timeout: duration must be at least 1ms",
        f"22: {vs}: spec.http[1].match[0].uri: only one of exact, prefix or regex may be set (got exact, prefix)",
        f'26: {vs}: spec.http[1].match[0].headers[X-Canary]: header name "X-Canary" must be lower-case',
        f'28: {vs}: spec.http[1].match[0].headers[x-env].regex: "(?=foo)bar" is not a valid RE2 regex '
        "(look-around and back-references are not supported)",
        f"29: {vs}: spec.http[1].redirect: HTTP route rule cannot contain both rewrite and redirect",
        f"30: {vs}: spec.http[1].redirect: redirect must specify URI, authority, scheme, or port",
        f'38: {vs}: spec.http[2].retries.retryOn: " 503" is not a valid retryOn condition',
        f"41: {vs}: spec.http[2].fault.abort.httpStatus: invalid abort http status 700 (must be 200..600)",
        f"43: {vs}: spec.http[2].fault.abort.percentage.value: percentage 120 must be in the range 0..100",
        f"46: {vs}: spec.http[2].mirrors: HTTP route cannot contain both mirror and mirrors",
        f"50: {vs}: spec.http[3].directResponse.status: status 99 must be in the range 200..599",
        f"51: {vs}: spec.http[3].delegate: delegate is not supported",
        f"57: {vs}: spec.http[4].rewrite: rewrite may only contain one of URI or UriRegexRewrite",
        f"64: {vs}: spec.http[4].headers.request.set: authority header cannot be set multiple times: "
        'have "a.example", attempting to set "b.example"',
        f"67: {vs}: spec.http[4].retries.attempts: http retry policy configured when attempts are set to 0 (disabled)",
    ]
    with pytest.raises(ConfigError) as info:
        result.raise_for_problems()
    assert info.value.problems == result.problems


def test_brief_example_weight_line() -> None:
    spec = (
        "  hosts:\n  - demoapp\n  http:\n  - route:\n    - destination:\n        host: demoapp\n"
        "      weight: 50\n    - destination:\n        host: demoapp\n      weight: -1\n"
    )
    assert problems("VirtualService", "demoapp", spec, "vs.yaml") == [
        "vs.yaml:15: VirtualService default/demoapp: spec.http[0].route[1].weight: must be >= 0"
    ]


def test_zero_total_weight_with_two_destinations() -> None:
    spec = "  hosts: [a]\n  http:\n  - route:\n    - destination: {host: a}\n    - destination: {host: b}\n"
    assert problems("VirtualService", "v", spec) == [
        "x.yaml:8: VirtualService default/v: spec.http[0].route: total destination weight = 0"
    ]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("  - route: []\n", "spec.http[0]: HTTP route, redirect or direct response is required"),
        (
            "  - route: [{destination: {host: a}}]\n    redirect: {uri: /}\n",
            "spec.http[0].redirect: HTTP route cannot contain both route and redirect",
        ),
        (
            "  - directResponse: {status: 200}\n    route: [{destination: {host: a}}]\n",
            "spec.http[0].directResponse: HTTP route cannot contain both route and direct response",
        ),
        (
            "  - redirect: {redirectCode: 404, uri: /}\n",
            "spec.http[0].redirect.redirectCode: 404 is not a valid redirect code, must be 3xx",
        ),
        (
            "  - route: [{destination: {host: a}}]\n    retries: {attempts: 2, retryOn: '5xx,599'}\n",
            'spec.http[0].retries.retryOn: "599" is not a valid retryOn condition',
        ),
        (
            "  - route: [{destination: {host: a}}]\n    timeout: 10\n",
            "spec.http[0].timeout: expected duration string such as 1s or 500ms, got integer",
        ),
        (
            "  - route: [{destination: {host: a}}]\n    timeout: 1x\n",
            'spec.http[0].timeout: invalid duration "1x"',
        ),
        (
            "  - route: [{destination: {host: a, port: {number: 70000}}}]\n",
            "spec.http[0].route[0].destination.port.number: port number 70000 must be in the range 1..65535",
        ),
        (
            "  - match: [{method: {prefix: ''}}]\n    route: [{destination: {host: a}}]\n",
            "spec.http[0].match[0].method.prefix: prefix must not be empty",
        ),
        (
            "  - match: [{uri: {regex: '(a'}}]\n    route: [{destination: {host: a}}]\n",
            'spec.http[0].match[0].uri.regex: "(a" is not a valid regex: missing ), unterminated subpattern '
            "at position 0",
        ),
        (
            "  - match: [{uri: {regex: 'a{2000}" + "b" * 1020 + "'}}]\n    route: [{destination: {host: a}}]\n",
            "spec.http[0].match[0].uri.regex: regex is too long (1027 > 1024 characters)",
        ),
        (
            "  - route: [{destination: {host: a}}]\n    fault: {}\n",
            "spec.http[0].fault: HTTP fault injection must have an abort and/or a delay",
        ),
        (
            "  - route: [{destination: {host: a}}]\n    fault: {delay: {percentage: {value: 5}}}\n",
            "spec.http[0].fault.delay.fixedDelay: required field missing",
        ),
        (
            "  - directResponse: {status: 200, body: {bytes: '***'}}\n",
            "spec.http[0].directResponse.body.bytes: body bytes are not valid base64",
        ),
        (
            "  - route: [{destination: {host: a}}]\n    mirrorPercentage: {value: -1}\n",
            "spec.http[0].mirrorPercentage.value: percentage -1 must be in the range 0..100",
        ),
        (
            "  - route: [{destination: {host: a}}]\n    headers: {request: {set: {x-a: '50%'}}}\n",
            'spec.http[0].headers.request.set: header "x-a": %VAR% substitutions are not supported '
            "(write %% for a literal %)",
        ),
        (
            "  - route: [{destination: {host: a}}]\n    corsPolicy: {allowMethods: [FETCH]}\n",
            'spec.http[0].corsPolicy.allowMethods[0]: "FETCH" is not a valid HTTP method',
        ),
        (
            "  - route: [{destination: {host: a}}]\n"
            "    rewrite: {uriRegexRewrite: {match: '^/(.*)', rewrite: '/\\q'}}\n",
            "spec.http[0].rewrite.uriRegexRewrite.rewrite: only \\0..\\9 and \\\\ escapes are allowed in a regex "
            "rewrite",
        ),
        (
            "  - route: [{destination: {host: a}, headers: {request: {set: {host: x}, add: {':authority': y}}}}]\n",
            'spec.http[0].route[0].headers.request.add: authority header cannot be set multiple times: have "x", '
            'attempting to set "y"',
        ),
        (
            "  - route: [{destination: {host: a}}]\n    ignoreUriCase: true\n",
            'spec.http[0]: unknown field "ignoreUriCase"',
        ),
    ],
)
def test_virtual_service_rules(rule: str, message: str) -> None:
    got = problems("VirtualService", "v", "  hosts: [a]\n  http:\n" + rule)
    assert [line.split(": ", 2)[2] for line in got] == [message]
    assert all(line.startswith("x.yaml:") for line in got)


def test_wildcard_star_host_needs_a_gateway() -> None:
    assert problems("VirtualService", "v", "  hosts: ['*']\n  http:\n  - route: [{destination: {host: a}}]\n") == [
        "x.yaml:6: VirtualService default/v: spec.hosts[0]: wildcard host * is not allowed for virtual services "
        "bound to the mesh gateway"
    ]
    ok = "  hosts: ['*']\n  gateways: [gw]\n  http:\n  - route: [{destination: {host: a}}]\n"
    assert problems("VirtualService", "v", ok) == []


def test_tcp_routes_are_accepted_with_a_warning() -> None:
    result = loads(("x.yaml", HEAD.format(kind="VirtualService", name="v") + "  hosts: [a]\n  tcp:\n  - route: []\n"))
    assert result.problems == []
    assert result.warnings == [
        "x.yaml:7: VirtualService default/v: spec.tcp: TCP routes are not served by fastproxy (ignored)"
    ]


def test_destination_rule_problems() -> None:
    spec = """\
  host: demoapp
  trafficPolicy:
    loadBalancer:
      simple: FASTEST
    connectionPool:
      tcp:
        maxConnections: -1
    outlierDetection:
      maxEjectionPercent: 150
    portLevelSettings:
    - loadBalancer: {simple: RANDOM}
  subsets:
  - name: v10
    labels: {version: v1.0}
  - name: v10
    labels: {version: 1.1}
  - name: V_2
"""
    dr = "DestinationRule default/demoapp"
    assert problems("DestinationRule", "demoapp", spec) == [
        f'x.yaml:9: {dr}: spec.trafficPolicy.loadBalancer.simple: invalid value "FASTEST" (expected one of '
        "UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST)",
        f"x.yaml:12: {dr}: spec.trafficPolicy.connectionPool.tcp.maxConnections: must be >= 0",
        f"x.yaml:14: {dr}: spec.trafficPolicy.outlierDetection.maxEjectionPercent: must be in the range 0..100",
        f"x.yaml:16: {dr}: spec.trafficPolicy.portLevelSettings[0].port: port must be specified in portLevelSettings",
        f'x.yaml:20: {dr}: spec.subsets[1].name: duplicate subset name "v10" (first on line 18)',
        f"x.yaml:21: {dr}: spec.subsets[1].labels[version]: expected string, got number",
        f'x.yaml:22: {dr}: spec.subsets[2].name: invalid subset name "V_2"',
    ]


def test_consistent_hash_needs_exactly_one_key() -> None:
    spec = (
        "  host: a\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: {httpHeaderName: x, useSourceIp: true}\n"
    )
    assert problems("DestinationRule", "a", spec) == [
        "x.yaml:9: DestinationRule default/a: spec.trafficPolicy.loadBalancer.consistentHash: consistentHash must "
        "specify exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName"
    ]


def test_service_entry_problems() -> None:
    spec = """\
  hosts: ["*"]
  resolution: STATIC
  ports:
  - number: 0
    name: http
  - number: 8080
    name: http
  endpoints:
  - address: not-an-ip
    ports: {grpc: 9000}
"""
    se = "ServiceEntry default/s"
    assert problems("ServiceEntry", "s", spec) == [
        f'x.yaml:6: {se}: spec.hosts[0]: invalid host "*"',
        f"x.yaml:9: {se}: spec.ports[0].number: port number 0 must be in the range 1..65535",
        f'x.yaml:12: {se}: spec.ports[1].name: duplicate port name "http"',
        f'x.yaml:14: {se}: spec.endpoints[0].address: endpoint address "not-an-ip" is not a valid IP address '
        "(resolution STATIC)",
        f'x.yaml:15: {se}: spec.endpoints[0].ports[grpc]: endpoint port "grpc" is not defined by the service entry',
    ]


def test_gateway_problems() -> None:
    spec = "  servers:\n  - port: {number: 80, protocol: HTTP}\n    hosts: ['a/b/c', 'ns/*.ok.com']\n    bind: here\n"
    assert problems("Gateway", "g", spec) == [
        'x.yaml:8: Gateway default/g: spec.servers[0].hosts[0]: invalid host "a/b/c"',
        'x.yaml:9: Gateway default/g: spec.servers[0].bind: bind "here" must be an IP address',
    ]


def test_document_level_problems() -> None:
    text = """\
- just a list
---
apiVersion: networking.istio.io/v1
metadata: {name: a}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {namespace: prod}
spec: {servers: [{port: {number: 80, protocol: HTTP}, hosts: ['*']}]}
---
apiVersion: networking.istio.io/v2
kind: Gateway
metadata: {name: g}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: g}
spec: {servers: [{port: {number: 80, protocol: HTTP}, hosts: ['*']}]}
extra: 1
"""
    assert loads(("d.yaml", text)).problems == [
        "d.yaml:1: document 1: expected a mapping, got list",
        "d.yaml:3: document 2 default/a: kind: required field missing",
        "d.yaml:8: Gateway prod/<unnamed>: metadata.name: required field missing",
        'd.yaml:11: Gateway default/g: apiVersion: unsupported apiVersion "networking.istio.io/v2" (expected '
        "networking.istio.io/v1, v1beta1 or v1alpha3)",
        'd.yaml:19: Gateway default/g: : unknown field "extra"',
    ]


GW = (
    "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {meta}\nspec:\n"
    "  servers: [{{port: {{number: 80, protocol: HTTP}}, hosts: ['*']}}]\n"
)


def test_duplicate_resource_names_the_first_place() -> None:
    gw = GW.format(meta="{name: g}")
    result = loads(("a.yaml", gw), ("b.yaml", "---\n" + gw))
    assert result.problems == [
        "b.yaml:2: Gateway default/g: metadata.name: duplicate Gateway default/g (first defined at a.yaml:1)"
    ]


def test_same_name_in_another_namespace_is_fine() -> None:
    gw = GW.format(meta="{name: g, namespace: %s}")
    assert loads(("a.yaml", gw % "a"), ("b.yaml", gw % "b")).problems == []


def test_seed_directory_with_every_section_has_duplicate_virtual_services() -> None:
    # Loading all sections at once redefines VirtualService demoapp: each extra one is named.
    result = load([str(DATA / "seed")])
    first = str(DATA / "seed" / "1.1-redirect-rewrite.yaml") + ":1"
    dups = [p for p in result.problems if "duplicate VirtualService default/demoapp" in p]
    assert len(dups) == 5 and all(p.endswith(f"(first defined at {first})") for p in dups)
