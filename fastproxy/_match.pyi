"""Type stub for the compiled matcher (fastproxy/_match.pyx); fastproxy._match_py has the same API."""

from collections.abc import Iterable, Sequence

from fastproxy import table
from fastproxy.codec.messages import RequestHead

class RouteMatcher:
    def __init__(self, specs: Sequence[table.MatchSpec]) -> None: ...
    def match(
        self,
        method: bytes,
        path: bytes,
        authority: bytes,
        scheme: bytes,
        headers: list[tuple[bytes, bytes]] | Iterable[tuple[bytes, bytes]] | RequestHead,
        port: int,
    ) -> int: ...

def pick(cumulative: tuple[int, ...], rnd: int) -> int: ...
