#!/usr/bin/python3
"""SQLAlchemy 1.4 recipes of docs/clients.md (Debian's python3-sqlalchemy, whose
PostgreSQL dialect uses python3-psycopg2), run against a real server.

    test/e2e/clients_sqlalchemy.py "postgresql+psycopg2://user@/db?host=/socket/dir&port=5432"
"""

import sys

import psycopg2
from sqlalchemy import Column, Integer, Text, cast, create_engine, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Session, declarative_base

URL = sys.argv[1]
JOB = "py-sqlalchemy"
Base = declarative_base()


class Conversation(Base):
    __tablename__ = "clients_sa_conversation"
    id = Column(Integer, primary_key=True)
    template_id = Column(Text, nullable=False)
    body = Column(Text, nullable=False)


def recipe_core_functions(engine):
    with engine.begin() as conn:
        # func.batchguard.<name>(...) calls batchguard.<name>(...). Arguments are typed from
        # the Python values: say jsonb with cast(..., JSONB) and text[] with ARRAY(Text).
        done = conn.execute(select(func.batchguard.complete_item(
            JOB, "a", cast({"tokens": 5}, JSONB)))).scalar()
        assert done is True
        pending = conn.execute(select(func.batchguard.filter_pending_items(
            JOB, cast(["a", "b", "c"], ARRAY(Text))))).scalar()
        assert pending == ["b", "c"], pending
        empty = conn.execute(select(func.batchguard.filter_pending_items(
            JOB, cast([], ARRAY(Text))))).scalar()
        assert empty == [], empty
        # A function returning a composite, in FROM: its columns.
        row = conn.execute(select(text("*")).select_from(func.batchguard.save_checkpoint(
            JOB, cast(["b"], ARRAY(Text)), cast([{"item_id": "c", "error": "timeout"}], JSONB)))).mappings().one()
        assert (row["completed"], row["failed"]) == (2, 1), dict(row)
        # The trap: an unknown id gives a row of NULLs in FROM.
        ghost = conn.execute(select(text("*")).select_from(
            func.batchguard.calculate_progress("no-such-job"))).mappings().one()
        assert all(v is None for v in ghost.values()), dict(ghost)


def recipe_orm_session(engine):
    Base.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        # The output row and its checkpoint in ONE transaction.
        session.add(Conversation(template_id="tpl-1", body="..."))
        session.flush()
        done = session.execute(select(func.batchguard.complete_item(JOB + "-orm", "tpl-1"))).scalar()
        assert done is True
    with Session(engine) as session, session.begin():
        session.add(Conversation(template_id="tpl-1", body="again"))
        session.flush()
        if not session.execute(select(func.batchguard.complete_item(JOB + "-orm", "tpl-1"))).scalar():
            session.rollback()  # already completed: our duplicate row goes away
    with Session(engine) as session:
        assert session.query(Conversation).filter_by(template_id="tpl-1").count() == 1


def recipe_pb001(engine):
    with engine.begin() as conn:
        conn.execute(select(func.batchguard.start_batch(JOB + "-leases", func.cast(["x"], ARRAY(Text)))))
        item, token = conn.execute(text(
            "SELECT item_id, lease_token FROM batchguard.claim_items(:job, 1)"), {"job": JOB + "-leases"}).one()
    try:
        with engine.begin() as conn:
            conn.execute(select(func.batchguard.complete_item(JOB + "-leases", item, None, token + 1000)))
        raise AssertionError("a stale token was accepted")
    except Exception as e:
        orig = getattr(e, "orig", None)
        # psycopg2 raises PB001 as InternalError; SQLAlchemy wraps it: check pgcode.
        assert isinstance(orig, psycopg2.InternalError), repr(e)
        assert orig.pgcode == "PB001", orig.pgcode


def main():
    engine = create_engine(URL, future=True)
    failures = 0
    for recipe in (recipe_core_functions, recipe_orm_session, recipe_pb001):
        try:
            recipe(engine)
            print(f"ok     sqlalchemy {recipe.__name__}")
        except Exception as e:
            failures += 1
            print(f"FAILED sqlalchemy {recipe.__name__}: {e!r}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
