"""Command line: run, check, routes, demo (CONTRACT.md)."""

from __future__ import annotations

import argparse
import os
import sys

from fastproxy import __version__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastproxy",
        description="Serve Istio traffic-management config (VirtualService, DestinationRule, "
        "ServiceEntry, WorkloadEntry, Gateway) with a fast HTTP/1.1 proxy.",
    )
    p.add_argument("--version", action="version", version=f"fastproxy {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def config_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "-c",
            "--config",
            action="append",
            required=True,
            metavar="PATH",
            help="YAML file (multi-document) or directory of *.yaml/*.yml; repeatable",
        )

    run = sub.add_parser("run", help="serve traffic until SIGTERM/SIGINT")
    config_arg(run)
    run.add_argument("--listen", default="127.0.0.1:15001", metavar="HOST:PORT", help="mesh listener")
    run.add_argument("--bind", default="0.0.0.0", metavar="ADDR", help="address for Gateway listeners")
    run.add_argument("--admin", default="127.0.0.1:15000", metavar="HOST:PORT", help="admin listener")
    run.add_argument("--workers", type=int, default=1, metavar="N")
    run.add_argument("--access-log", metavar="PATH|-")
    run.add_argument("--codec", choices=["httptools", "h11"], help="HTTP parser (default httptools)")
    run.add_argument("--drain-timeout", type=float, default=10.0, metavar="SECONDS")
    run.add_argument("--seed", type=int, help="seed the random draws (weights, faults) for repeatable runs")
    run.add_argument(
        "--no-metrics", action="store_true", help="do not count requests (no metrics or graph data); for benchmarks"
    )
    run.add_argument("--max-header-bytes", type=int, default=60 * 1024, metavar="N")
    run.add_argument("--max-headers", type=int, default=100, metavar="N")
    run.add_argument("--head-timeout", type=float, default=60.0, metavar="SECONDS")
    run.add_argument("--idle-timeout", type=float, default=300.0, metavar="SECONDS")
    run.add_argument("--upstream-idle-timeout", type=float, default=60.0, metavar="SECONDS")
    run.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS")
    run.add_argument(
        "--max-mirrors", type=int, default=256, metavar="N", help="mirror copies in flight per worker (excess dropped)"
    )
    run.add_argument(
        "--max-connections",
        type=int,
        default=0,
        metavar="N",
        help="client connections per worker; beyond it new ones are refused at once "
        "(default: sized to the file-descriptor limit)",
    )

    check = sub.add_parser("check", help="validate config; exit 1 on problems")
    config_arg(check)
    routes = sub.add_parser("routes", help="print the compiled route table")
    config_arg(routes)
    explain = sub.add_parser("explain", help="show which listener, virtual host and route would take a request")
    config_arg(explain)
    explain.add_argument("request", metavar="'METHOD URL'", help="e.g. 'GET http://demoapp:8080/canary'")
    explain.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'", help="request header; repeatable"
    )
    explain.add_argument("--gateway", metavar="NAMESPACE/NAME", help="explain for this Gateway instead of the mesh")
    sub.add_parser("demo", help="run the seed tutorial's scenario on this machine (see `fastproxy demo --help`)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["demo"]:
        # The demo parses its own options (--section, --traffic, --check, --help).
        from fastproxy.demo.runner import main as demo_main

        return demo_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 2

    from fastproxy.supervisor import RunOptions, err, load_or_report, parse_hostport

    if args.command == "check":
        config = load_or_report(args.config)
        if config is None:
            return 1
        print(f"ok: {', '.join(args.config)}")
        return 0
    if args.command == "routes":
        config = load_or_report(args.config)
        if config is None:
            return 1
        from fastproxy.config.routes_view import render_routes

        sys.stdout.write(render_routes(config))
        return 0

    if args.command == "explain":
        config = load_or_report(args.config)
        if config is None:
            return 1
        from fastproxy.explain import ExplainError, explain

        try:
            lines = explain(config, args.request, args.header, args.gateway)
        except ExplainError as exc:
            err(f"fastproxy explain: {exc}")
            return 1
        sys.stdout.write("\n".join(lines) + "\n")
        return 0

    from fastproxy.server import Limits
    from fastproxy.supervisor import run

    if not os.environ.get("FASTPROXY_NO_EXTENSIONS"):
        from fastproxy._twins import uncompiled

        missing = uncompiled()
        if missing:
            # Not chosen (FASTPROXY_NO_EXTENSIONS would say so): the build had no compiler.
            err(f"fastproxy: warning: running pure-Python twins of {', '.join(missing)}; several times slower")

    try:
        opts = RunOptions(
            configs=args.config,
            listen=parse_hostport(args.listen),
            bind=args.bind,
            admin=parse_hostport(args.admin),
            workers=args.workers,
            access_log=args.access_log,
            codec=args.codec,
            drain_timeout=args.drain_timeout,
            seed=args.seed,
            metrics=not args.no_metrics,
            limits=Limits(
                max_head_bytes=args.max_header_bytes,
                max_headers=args.max_headers,
                head_timeout=args.head_timeout,
                idle_timeout=args.idle_timeout,
                upstream_idle_timeout=args.upstream_idle_timeout,
                connect_timeout=args.connect_timeout,
                max_mirrors=args.max_mirrors,
                max_connections=args.max_connections,
            ),
        )
    except ValueError as exc:
        err(f"fastproxy: {exc}")
        return 1
    return run(opts)


if __name__ == "__main__":
    raise SystemExit(main())
