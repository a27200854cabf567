"""The statements `tracehouse backup`/`restore` send, and the names they refuse."""

from __future__ import annotations

import pytest

from tracehouse.backup import BACKUP_TABLES, BackupError, Destination, backup_sql, restore_sql


def test_disk_destination_names_every_table_and_a_directory_per_backup() -> None:
    sql = backup_sql("tracehouse", BACKUP_TABLES, Destination("nightly-1"))
    assert sql.startswith("BACKUP TABLE `tracehouse`.`otel_traces`, ")
    assert sql.endswith(" TO Disk('backups', 'nightly-1/')")
    assert sql.count("TABLE ") == len(BACKUP_TABLES)
    assert "sink_batches" not in sql  # the sink's offsets-of-the-moment are not restored


def test_s3_destination_uses_the_servers_credentials() -> None:
    dest = Destination("b1", s3_url="https://bucket.s3.eu-west-1.amazonaws.com/tracehouse/")
    sql = restore_sql("db", ("otel_traces",), dest)
    assert sql == (
        "RESTORE TABLE `db`.`otel_traces` FROM "
        "S3('https://bucket.s3.eu-west-1.amazonaws.com/tracehouse/b1/')"
    )


@pytest.mark.parametrize("name", ["", "../etc", "a/b", "x'y", "-lead"])
def test_names_that_could_escape_the_backup_directory_are_refused(name: str) -> None:
    with pytest.raises(BackupError):
        Destination(name)


def test_s3_url_must_be_http() -> None:
    with pytest.raises(BackupError):
        Destination("b1", s3_url="s3://bucket/prefix")
