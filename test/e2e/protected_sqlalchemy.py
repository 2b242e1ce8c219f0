#!/usr/bin/python3
"""Protected tables (issue 17) from an SQLAlchemy ORM session (Debian's python3-sqlalchemy
1.4 on psycopg2): the application deletes with session.delete() and commits, nothing else.
The backup appears, holds the deleted rows and their cascaded children, and restores them
identically; when the backup cannot be made (a per-owner quota too small, set by the
administrator), the session's commit fails and every row is still there.

    test/e2e/protected_sqlalchemy.py APP_URL ADMIN_URL
"""

import sys

from sqlalchemy import Column, ForeignKey, Integer, Numeric, Text, create_engine, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, declarative_base, relationship

APP_URL, ADMIN_URL = sys.argv[1], sys.argv[2]
Base = declarative_base()


class Invoice(Base):
    __tablename__ = "e2e_sa_invoice"
    id = Column(Integer, primary_key=True)
    customer = Column(Text, nullable=False)
    total = Column(Numeric(12, 2))
    # passive_deletes: the database's ON DELETE CASCADE removes the lines (the ORM would
    # otherwise load and delete them one by one -- protection backs them up either way).
    lines = relationship("InvoiceLine", passive_deletes=True)


class InvoiceLine(Base):
    __tablename__ = "e2e_sa_invoice_line"
    id = Column(Integer, primary_key=True)
    invoice_id = Column(Integer, ForeignKey("e2e_sa_invoice.id", ondelete="CASCADE"), nullable=False)
    item = Column(Text)


def contents(engine):
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT (SELECT string_agg(to_jsonb(i)::text, ',' ORDER BY id) FROM e2e_sa_invoice i),"
            "       (SELECT string_agg(to_jsonb(l)::text, ',' ORDER BY id) FROM e2e_sa_invoice_line l)")).one()


def backups(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM batchguard.get_user_backups()")).scalar()


def main():
    app = create_engine(APP_URL, future=True)
    admin = create_engine(ADMIN_URL, future=True, isolation_level="AUTOCOMMIT")
    Base.metadata.drop_all(app)
    Base.metadata.create_all(app)
    with Session(app) as session, session.begin():
        for i in range(1, 6):
            session.add(Invoice(id=i, customer=f"customer {i}", total=f"{i}99.50"))
            session.add_all(InvoiceLine(id=i * 10 + k, invoice_id=i, item=f"item {k} of {i}")
                            for k in range(3))
    with app.begin() as conn:  # the table's owner protects it, once
        conn.execute(text("SELECT batchguard.protect_table('e2e_sa_invoice')"))
    before = contents(app)
    count = backups(app)

    # The application's code, unchanged: load, delete, commit.
    with Session(app) as session:
        with session.begin():
            session.delete(session.get(Invoice, 2))
            session.delete(session.get(Invoice, 4))
            session.flush()
            backup_id = session.scalar(text("SELECT batchguard.last_backup_id()"))
    assert backup_id is not None, "no pending backup in the transaction"
    assert backups(app) == count + 1, "one backup for the committed session"
    with app.connect() as conn:
        counts = conn.execute(text("SELECT row_counts FROM batchguard.get_backup(:id)"),
                              {"id": backup_id}).scalar()
        audit = conn.execute(text("SELECT count(*) FROM batchguard.audit WHERE backup_id = :id"
                                  " AND action = 'protected delete'"), {"id": backup_id}).scalar()
    assert counts == {"public.e2e_sa_invoice": 2, "public.e2e_sa_invoice_line": 6}, counts
    assert audit == 1, audit
    assert contents(app) != before
    with app.begin() as conn:
        restored = conn.execute(text("SELECT batchguard.restore_backup(:id)"), {"id": backup_id}).scalar()
    assert restored["inserted"] == 8, restored
    assert contents(app) == before, "the restored rows are not identical"
    print("ok     sqlalchemy: session.delete + commit made one backup; it restores identically")

    # A backup that cannot be made fails the commit: the role's quota is set to 0.
    role = app.url.username
    with admin.connect() as conn:  # a superuser's setting (autocommit)
        conn.execute(text(f'ALTER ROLE "{role}" SET batchguard.max_backup_bytes_per_owner = 0'))
    app.dispose()  # new connections get the setting
    try:
        failed = None
        try:
            with Session(app) as session:
                with session.begin():
                    session.delete(session.get(Invoice, 3))
        except OperationalError as e:  # psycopg2 raises 53400 as OperationalError
            failed = e
        assert failed is not None, "the commit succeeded although the backup could not be made"
        assert failed.orig.pgcode == "53400", failed.orig.pgcode
        assert contents(app) == before, "rows were deleted although the backup failed"
        assert backups(app) == count + 1, "a failed backup left a backup behind"
        print("ok     sqlalchemy: a failed backup (quota) fails the session's commit, every row kept"
              f" ({failed.orig.pgerror.splitlines()[0]})")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER ROLE "{role}" RESET batchguard.max_backup_bytes_per_owner'))
        app.dispose()
    with app.begin() as conn:
        conn.execute(text("SELECT batchguard.unprotect_table('e2e_sa_invoice')"))
    Base.metadata.drop_all(app)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line for the summary, the traceback for the log
        import traceback
        traceback.print_exc()
        print(f"FAILED sqlalchemy protected tables: {e!r}")
        sys.exit(1)
