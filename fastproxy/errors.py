"""Errors raised while loading configuration.

Runtime (request path) errors live with the pipeline; this module only holds
what the config stage reports to the CLI and to a SIGHUP reload.
"""

from __future__ import annotations

from collections.abc import Sequence


class ConfigError(Exception):
    """A config that cannot be served; `problems` holds one line per problem.

    Each line reads `FILE:LINE: Kind namespace/name: field.path: message`, the
    format `fastproxy check` prints.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: list[str] = list(problems)
        first = self.problems[0] if self.problems else "invalid configuration"
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)
