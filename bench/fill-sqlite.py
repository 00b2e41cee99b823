#!/usr/bin/env python3
"""Run a fill SQL file (sql/fill-sqlite.sql) on a SQLite database.

    fill-sqlite.py [--bulk] DB_FILE SQL_FILE name=value...

Provides md5(text) -> hex text and sha256(text) -> 32-byte BLOB, as PostgreSQL has
them, binds each :name to its value (integers as integers, NULL as NULL), and runs
the statements one by one (a statement ends with ';' at the end of a line). The
database is left in the journal mode it had (Tessera uses WAL) and checkpointed.

With --bulk (only when no one else has the database open), the fill runs without a
journal, rather than through a WAL as large as the data it adds, then WAL is set back.
"""

import hashlib
import re
import sqlite3
import sys


def value(text):
    if text == "NULL":
        return None
    if re.fullmatch(r"-?[0-9]+", text):
        return int(text)
    return text


def main():
    args = sys.argv[1:]
    bulk = bool(args) and args[0] == "--bulk"
    if bulk:
        args = args[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    db, sql_file, *pairs = args
    params = {}
    for pair in pairs:
        name, _, text = pair.partition("=")
        params[name] = value(text)
    con = sqlite3.connect(db, isolation_level=None, timeout=60)
    con.create_function(
        "md5", 1, lambda s: hashlib.md5(s.encode()).hexdigest(), deterministic=True
    )
    con.create_function(
        "sha256", 1, lambda s: hashlib.sha256(s.encode()).digest(), deterministic=True
    )
    # A bulk load: a large page cache (2 GiB) and no fsync until the checkpoint.
    con.execute("PRAGMA cache_size = -2097152")
    if bulk:
        mode = con.execute("PRAGMA journal_mode").fetchall()[0][0]
        con.execute("PRAGMA journal_mode = OFF").fetchall()
    con.execute("PRAGMA synchronous = OFF")
    con.execute("PRAGMA foreign_keys = OFF")
    with open(sql_file) as f:
        sql = f.read()
    sql = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    for statement in re.split(r";\s*$", sql, flags=re.M):
        if statement.strip():
            con.execute(statement, params)
    if bulk:
        # (Nothing in the WAL to checkpoint; SQLite refuses to right after the switch.)
        con.execute(f"PRAGMA journal_mode = {mode}").fetchall()
    else:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    con.close()


if __name__ == "__main__":
    main()
