"""sisock is read-only: it answers a statement that would write or administer as InfluxDB 1.x answers a user
who may only read (HTTP 403, ``error authorizing query: <user> not authorized to execute statement '...',
requires admin privilege`` or ``requires WRITE on <db>``), before running any statement of the query."""
from __future__ import annotations

from typing import Collection, Optional, Sequence

from . import ast


def authorization_error(statements: Sequence[ast.Statement], user: str, database: str,
                        readable: Collection[str]) -> Optional[str]:
    """InfluxDB's refusal (to follow "error authorizing query: ") for a non-admin ``user`` holding READ on
    the ``readable`` databases only; None when every statement is allowed. ``database`` is the query's db."""
    for statement in statements:
        for p in statement.required_privileges():
            if p.admin:
                return f"{user} not authorized to execute statement '{statement}', requires admin privilege"
            db = p.database or database
            allowed = p.privilege == ast.NO_PRIVILEGES or (p.privilege == ast.READ and db in readable)
            if not allowed:
                return f"{user} not authorized to execute statement '{statement}', requires {p.privilege} on {db}"
    return None
