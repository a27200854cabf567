"""What ClickHouse's ``engine_full`` says after a statement of ``schemas.table_settings``:
shared by the tests of the settings migrate keeps in line (packed parts, merge width)."""

from __future__ import annotations


def ddl_after(ddl: str, statement: str, setting: str) -> str:
    """``ddl`` (with ``setting`` last, if present) after one MODIFY or RESET of it."""
    plain = ddl.split(f", {setting}")[0]
    if "RESET SETTING" in statement:
        return plain
    return f"{plain}, {setting} = {int(statement.rsplit('=', 1)[1])}"
