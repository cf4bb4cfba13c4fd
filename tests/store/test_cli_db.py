"""``infusion-monitor db check|upgrade`` against either engine."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, make_url, text

from infusion_monitor.cli import main
from infusion_monitor.store.db import migrate_to, schema_status


def _engine(url: str):
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url)


def test_check_an_old_schema_then_upgrade_it(db_url: str, capsys) -> None:
    engine = _engine(db_url)
    migrate_to(engine, "0003")
    engine.dispose()
    assert main(["db", "check", "--db", db_url]) == 1
    out = capsys.readouterr().out
    assert "schema:   revision 0003; this version needs" in out
    assert "run `infusion-monitor db upgrade` (0004, 0005" in out
    sqlite = db_url.startswith("sqlite")
    assert ("engine:   SQLite 3." if sqlite else "engine:   PostgreSQL ") in out
    # check changed nothing
    engine = _engine(db_url)
    assert schema_status(engine)[0] == "0003"
    engine.dispose()
    assert main(["db", "upgrade", "--db", db_url]) == 0
    assert "(this version's newest)" in capsys.readouterr().out
    assert main(["db", "check", "--db", db_url]) == 0
    out = capsys.readouterr().out
    engine = _engine(db_url)
    current, head = schema_status(engine)
    engine.dispose()
    assert current == head and f"revision {head}, current" in out
    if sqlite:  # the app's own open set the durable journal mode
        assert "(WAL)" in out


def test_check_refuses_another_applications_database(db_url: str, capsys) -> None:
    engine = _engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    assert main(["db", "check", "--db", db_url]) == 1
    assert "belongs to another application (it has tables invoices)" in capsys.readouterr().out


def test_check_a_missing_sqlite_file_creates_nothing(tmp_path: Path, capsys) -> None:
    # SQLite only: a database file that does not exist yet.
    path = tmp_path / "none.db"
    assert main(["db", "check", "--db", str(path)]) == 1
    assert "no such file (it is created on first use)" in capsys.readouterr().out
    assert not path.exists()
