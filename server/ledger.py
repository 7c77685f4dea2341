"""The team server's own records, in its PostgreSQL database, out of every registry writer's reach.

Three tables beside MLflow's: `creditgov_chain` (every audit event the server signed:
the chain head that `verify` compares the tags with), `creditgov_registrations` (who
created each model version, as the server authenticated them: the four-eyes rule reads
this, never a tag) and `creditgov_roles` (trainer, reviewer, promoter per model, granted
by the admin). The first two are append-only: a trigger refuses UPDATE and DELETE, so
the app itself cannot rewrite them, and changing them means altering the database as
its owner, outside MLflow and creditgov entirely.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from registry.governance.chain import AuditEvent, ServerHead
from registry.governance.errors import GovernanceError
from registry.governance.signing import Signer, signature_ok

__all__ = ["ROLES", "Ledger", "ServerNotary"]

ROLES = ("trainer", "reviewer", "promoter")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS creditgov_chain (
    model TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL, sig TEXT NOT NULL,
    event TEXT NOT NULL, recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (model, seq)
);
CREATE TABLE IF NOT EXISTS creditgov_registrations (
    model TEXT NOT NULL, version TEXT NOT NULL, username TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (model, version)
);
CREATE TABLE IF NOT EXISTS creditgov_roles (
    model TEXT NOT NULL, username TEXT NOT NULL, role TEXT NOT NULL,
    PRIMARY KEY (model, username, role)
);
CREATE OR REPLACE FUNCTION creditgov_append_only() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'creditgov: % is append-only', TG_TABLE_NAME; END $$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER creditgov_chain_append_only BEFORE UPDATE OR DELETE ON creditgov_chain
    FOR EACH ROW EXECUTE FUNCTION creditgov_append_only();
CREATE OR REPLACE TRIGGER creditgov_registrations_append_only
    BEFORE UPDATE OR DELETE ON creditgov_registrations
    FOR EACH ROW EXECUTE FUNCTION creditgov_append_only();
"""
#: Serialises schema creation across the server's workers, which all start at once.
_SCHEMA_LOCK = 7_204_211


@dataclass(frozen=True)
class Ledger:
    """The server's tables, reached with psycopg2 on the backend store's database."""

    dsn: str  # postgresql://user@host:port/database

    @classmethod
    def from_store_uri(cls, uri: str) -> Ledger:
        if not uri.startswith("postgresql"):
            raise GovernanceError(
                f"creditgov's server app keeps its records in PostgreSQL; the backend store is "
                f"{uri.split(':', 1)[0]}: run `mlflow server --backend-store-uri postgresql://...`"
            )
        _scheme, rest = uri.split("://", 1)
        return cls(dsn=f"postgresql://{rest}")

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        import psycopg2

        connection = psycopg2.connect(self.dsn, connect_timeout=10)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                yield cursor
        finally:
            connection.close()

    def create(self) -> None:
        with self._cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
            try:
                cursor.execute(_SCHEMA)
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))

    # ------------------------------------------------------------------ the chain head

    def record_event(self, model: str, entry: AuditEvent) -> None:
        """Keep a signed event; a sequence number already recorded is refused (a second writer)."""
        import json

        import psycopg2

        with self._cursor() as cursor:
            try:
                cursor.execute(
                    "INSERT INTO creditgov_chain (model, seq, hash, sig, event) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (model, entry.seq, entry.hash, entry.sig, json.dumps(entry.to_json())),
                )
            except psycopg2.errors.UniqueViolation:
                raise GovernanceError(
                    f"event {entry.seq} of {model!r} is already recorded by the server: the chain's "
                    f"tags were changed around the server; `creditgov audit {model} --verify` names how"
                ) from None

    def head(self, model: str) -> ServerHead:
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT seq, hash FROM creditgov_chain WHERE model = %s ORDER BY seq DESC LIMIT 1",
                (model,),
            )
            row = cursor.fetchone()
        return ServerHead(seq=int(row[0]), hash=str(row[1])) if row else ServerHead(0, "")

    # ------------------------------------------------------------------ registrations

    def register(self, model: str, version: str, username: str) -> None:
        with self._cursor() as cursor:
            cursor.execute(
                "INSERT INTO creditgov_registrations (model, version, username) VALUES (%s, %s, %s)",
                (model, version, username),
            )

    def registrant(self, model: str, version: str) -> str | None:
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT username FROM creditgov_registrations WHERE model = %s AND version = %s",
                (model, version),
            )
            row = cursor.fetchone()
        return str(row[0]) if row else None

    # ------------------------------------------------------------------ roles

    def roles(self, model: str, username: str) -> set[str]:
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT role FROM creditgov_roles WHERE model = %s AND username = %s",
                (model, username),
            )
            return {str(row[0]) for row in cursor.fetchall()}

    def grant(self, model: str, username: str, role: str, *, revoke: bool = False) -> None:
        with self._cursor() as cursor:
            if revoke:
                cursor.execute(
                    "DELETE FROM creditgov_roles WHERE model = %s AND username = %s AND role = %s",
                    (model, username, role),
                )
            else:
                cursor.execute(
                    "INSERT INTO creditgov_roles (model, username, role) VALUES (%s, %s, %s) "
                    "ON CONFLICT DO NOTHING",
                    (model, username, role),
                )


@dataclass(frozen=True)
class ServerNotary:
    """Signs each event with the server's key and records it in the ledger before it is written."""

    signer: Signer
    ledger: Ledger

    def seal(self, name: str, entry: AuditEvent) -> AuditEvent:
        sealed = replace(entry, sig=self.signer.sign(entry.hash))
        self.ledger.record_event(name, sealed)
        return sealed

    def verifies(self, entry: AuditEvent) -> bool:
        return signature_ok(self.signer.key.public_key(), entry.hash, entry.sig)

    def head(self, name: str) -> ServerHead:
        return self.ledger.head(name)
