"""Path normalisation, path rewrite and redirect Location, as pure functions.

All three work on the request target as the codec gives it: `path` is the
origin-form target, query string included.  Semantics: traffic-semantics.md
2.6 (normalisation), 3.1 (rewrite) and 3.2 (redirect).
"""

from __future__ import annotations

import re

from fastproxy.table import REWRITE_PREFIX, REWRITE_REGEX, Redirect, Rewrite

__all__ = ["normalize_path", "redirect_location", "rewrite_path", "split_query"]


def split_query(path: bytes) -> tuple[bytes, bytes]:
    """(path part, rest) where rest is b"" or starts at the first "?" (or "#" when no query)."""
    q = path.find(b"?")
    h = path.find(b"#")
    if h >= 0 and (q < 0 or h < q):
        q = h
    if q < 0:
        return path, b""
    return path[:q], path[q:]


def normalize_path(path: bytes) -> bytes:
    """Istio's default `pathNormalization: BASE`: remove dot segments (RFC 3986 5.2.4).

    Duplicate slashes are kept (`//foo` stays, and does not match `prefix: /foo`) and
    %2F is left encoded.  The query string is never touched.  Returns `path` itself
    when nothing changes, which is nearly always.
    """
    part, rest = split_query(path)
    if b"/." not in part and not part.startswith(b"."):
        return path
    absolute = part.startswith(b"/")
    segments = part.split(b"/")
    if absolute:
        segments = segments[1:]
    out: list[bytes] = []
    trailing_slash = False
    for seg in segments:
        if seg == b".":
            trailing_slash = True
        elif seg == b"..":
            if out:
                out.pop()
            trailing_slash = True
        else:
            out.append(seg)
            trailing_slash = False
    new = b"/".join(out)
    # "/a/b/.." is "/a/": a final dot segment leaves its directory's slash behind.
    if trailing_slash and out:
        new += b"/"
    if absolute:
        new = b"/" + new
    if new == part:
        return path
    return new + rest


def _re2_replace_all(regex: re.Pattern[bytes], template: bytes, subject: bytes) -> bytes:
    """RE2::GlobalReplace semantics, which Envoy's regex_rewrite uses.

    Python (3.7+) also replaces an empty match right after a previous match,
    RE2 does not: `.*` -> `/x` turns `/a` into `/x` in Envoy, `/x/x` with re.sub.
    """
    out: list[bytes] = []
    pos = 0
    last_end = -1
    for m in regex.finditer(subject):
        start, end = m.span()
        if start == end and start == last_end:
            continue
        out.append(subject[pos:start])
        out.append(m.expand(template))
        pos = last_end = end
    if not out:
        return subject
    out.append(subject[pos:])
    return b"".join(out)


def rewrite_path(rw: Rewrite, path: bytes) -> bytes:
    """The path sent upstream after an HTTPRewrite `uri` / `uriRegexRewrite` (3.1)."""
    part, rest = split_query(path)
    if rw.kind == REWRITE_PREFIX:
        strip = rw.strip
        # strip == -1: the route matched the whole path (exact or regex match).
        if strip < 0 or strip > len(part):
            strip = len(part)
        return rw.replacement + part[strip:] + rest
    if rw.kind == REWRITE_REGEX and rw.regex is not None:
        new = _re2_replace_all(rw.regex, rw.replacement, part)
        if not new:  # Envoy keeps the original path when the rewrite yields nothing
            return path
        return new + rest
    return path


_DEFAULT_PORT = {b"http": b":80", b"https": b":443"}


def _host_port_split(host: bytes) -> int:
    """Index of the ":" before the Host's port, or -1 (IPv6 literals keep their colons)."""
    if host.startswith(b"["):
        end = host.find(b"]:")
        return end + 1 if end >= 0 else -1
    return host.rfind(b":")


def redirect_location(rd: Redirect, scheme: bytes, host: bytes, path: bytes) -> bytes:
    """The Location header of an HTTPRedirect (3.2).

    `scheme` is the request's scheme (x-forwarded-proto rules applied), `host` the
    request's raw Host (port kept), `path` the request target with its query.
    """
    new_scheme = rd.scheme or scheme
    port = b":%d" % rd.port if rd.port else b""

    if rd.authority:
        new_host = rd.authority
    else:
        new_host = host
        colon = _host_port_split(host)
        if colon >= 0:
            # Envoy drops the Host's own port when the redirect names one, or when the
            # scheme changes and the port was the old scheme's default.
            host_port = host[colon:]
            if port or (new_scheme != scheme and _DEFAULT_PORT.get(scheme) == host_port):
                new_host = host[:colon]

    if rd.path is None:
        new_path = path
    elif rd.prefix_rewrite:
        part, rest = split_query(path)
        strip = rd.strip
        if strip < 0 or strip > len(part):
            strip = len(part)
        new_path = rd.path + part[strip:] + rest
    elif b"?" in rd.path:
        # The redirect's own query replaces the request's.
        new_path = rd.path
    else:
        q = path.find(b"?")
        if q < 0:
            new_path = rd.path
        else:
            h = path.find(b"#", q)
            new_path = rd.path + (path[q:] if h < 0 else path[q:h])
    if not new_path.startswith(b"/"):
        new_path = b"/" + new_path
    return new_scheme + b"://" + new_host + port + new_path
