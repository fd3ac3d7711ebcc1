"""Database engine and migrations.

* Default: SQLite file ``<data_dir>/packshot.db`` in WAL mode (readers never block the writer),
  ``busy_timeout`` 30 s, and ``BEGIN IMMEDIATE`` for write transactions so two writers queue on the
  lock instead of failing with "database is locked" when a read transaction upgrades. Writes are
  ``synchronous=FULL`` (fsync at commit) except those marked ``durable=False`` (progress).
* PostgreSQL (or any SQLAlchemy URL) by ``Settings.database_url``; ``postgresql://`` URLs use the
  psycopg 3 driver.
* The schema is owned by Alembic: :func:`migrate` runs ``upgrade head`` programmatically at start.
* File modes (one policy for the whole data dir, whatever the umask): the data dir and its folders
  are 0700, the database and every blob 0600. It holds users' photos and results; only the
  server's own user reads it. SQLite creates its -wal and -shm files with the database's mode.
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event

from ..config import Settings

PACKAGE_DIR = Path(__file__).resolve().parent


def private_dir(path: Path) -> Path:
    """Create ``path`` (0700); an existing one is left as its owner set it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def database_url(settings: Settings) -> str:
    url = settings.database_url
    if not url:
        db = private_dir(Path(settings.data_dir)).resolve() / "packshot.db"
        if not db.exists():  # created 0600 before SQLite opens it (its -wal/-shm follow this mode)
            os.close(os.open(db, os.O_CREAT | os.O_WRONLY, 0o600))
        return f"sqlite:///{db}"
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def make_engine(settings: Settings, url: str | None = None) -> Engine:
    """An Engine for these settings. Write transactions use ``engine.execution_options(write=True)``."""
    url = url or database_url(settings)
    if url.startswith("sqlite"):
        engine = create_engine(url, pool_size=32, max_overflow=96, pool_timeout=60,
                               connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _sqlite_begin)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            opts = conn.get_execution_options()
            if opts.get("write", False):
                # FULL: the commit is on disk before we answer (a 202 survives a power cut, not
                # only a kill -9); progress and heartbeats, which are rewritten every second,
                # commit with NORMAL (WAL: still atomic and consistent, never fsync-bound)
                conn.exec_driver_sql(f"PRAGMA synchronous={'FULL' if opts.get('durable', True) else 'NORMAL'}")
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")
    else:
        engine = create_engine(url, pool_size=20, max_overflow=20, pool_timeout=60, pool_pre_ping=True)
    return engine


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config(str(PACKAGE_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(PACKAGE_DIR / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """``alembic upgrade head`` on this engine (idempotent; safe with concurrent starters on
    PostgreSQL thanks to Alembic's transactional DDL)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.execution_options(write=True).begin() as conn:
        if conn.dialect.name == "postgresql":  # one migrator at a time (server + workers starting)
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7263849201)")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
