"""Governance commands: approve, reject, promote, rollback, audit, models list / show.

Each parses, calls one function of `registry.governance` with the acting identity, and
prints the outcome; a refusal is a `GovernanceError` (exit 3, mapped in `base.py`).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from creditgov.cli.base import app, console, errors, fail, models_app
from creditgov.errors import EXIT_BAD_INPUT, EXIT_REFUSED

__all__ = [
    "approve",
    "audit",
    "governance",
    "governance_client",
    "models_list",
    "models_show",
    "promote",
    "reject",
    "rollback",
    "trust",
]


def governance_client() -> tuple[Any, str]:
    """The registry client and the acting identity ($MLFLOW_TRACKING_USERNAME or login)."""
    from registry.tracking import identity, resolve_tracking_uri, use_tracking

    return use_tracking(resolve_tracking_uri(None)), identity()


def governance() -> Any:
    """Who decides: the team server when the tracking URI is one, else the rules run here."""
    import mlflow

    from registry.governance.actions import governance_for

    client, actor = governance_client()
    return governance_for(client, mlflow.get_registry_uri(), actor)


def trust() -> Any:
    """What a verify here can check: the team server's signatures and head, or hashes only."""
    import mlflow

    from registry.governance.trust import trust_for

    return trust_for(mlflow.get_registry_uri())


@app.command()
def approve(
    name: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str, typer.Argument(help="model version")],
    comment: Annotated[str, typer.Option(help="what you reviewed and concluded")],
    override_gates: Annotated[
        bool,
        typer.Option(
            "--override-gates", help="approve although gates failed (needs --justification)"
        ),
    ] = False,
    justification: Annotated[
        str | None, typer.Option(help="why failed gates are acceptable")
    ] = None,
) -> None:
    """Approve a version after reading its report. Its trainer cannot approve it (four eyes)."""
    event = governance().approve(
        name, version, comment=comment, override_gates=override_gates, justification=justification
    )
    console.print(
        f"Approved models:/{name}/{version} as {event.actor}; evidence sha256 {event.details['evidence_sha256'][:16]}…"
    )


@app.command()
def reject(
    name: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str, typer.Argument(help="model version")],
    comment: Annotated[str, typer.Option(help="why the version is rejected")],
) -> None:
    """Reject a version; it can never be approved or promoted afterwards."""
    event = governance().reject(name, version, comment=comment)
    console.print(f"Rejected models:/{name}/{version} as {event.actor}.")


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str, typer.Argument(help="model version")],
    alias: Annotated[
        str, typer.Option(help="champion (serving) or challenger (shadow)")
    ] = "champion",
) -> None:
    """Point an alias at an approved version; the old champion becomes 'previous'."""
    event = governance().promote(name, version, alias=alias)
    before = event.details.get("from")
    moved = (
        f" (was version {before}, now alias 'previous')" if before and alias == "champion" else ""
    )
    console.print(f"models:/{name}@{alias} -> version {version}{moved}")


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="registered model name")],
    alias: Annotated[str, typer.Option(help="the alias to move back")] = "champion",
) -> None:
    """Put the previous champion back; recorded in the audit chain."""
    event = governance().rollback(name, alias=alias)
    console.print(
        f"models:/{name}@{alias} -> version {event.version} (rolled back from {event.details.get('from')})"
    )


@app.command()
def audit(
    name: Annotated[str, typer.Argument(help="registered model name")],
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="recompute the hash chain and check tags and aliases against it; against a team "
            "server also every signature (key pinned in $CREDITGOV_SERVER_PUBLIC_KEY) and the "
            "server's own chain head; exit 3 if broken",
        ),
    ] = False,
) -> None:
    """Every governance event of a model, hash-linked to the one before (signed on a team server)."""
    from registry.governance import read_chain, verify_chain

    client, _ = governance_client()
    try:
        chain = read_chain(client, name)
    except Exception as err:  # an unknown model is bad input, not a crash
        raise fail(
            f"{name}: no such registered model ({type(err).__name__})", EXIT_BAD_INPUT
        ) from None
    table = Table(title=f"Audit chain of {name}", title_justify="left")
    for column in ("#", "time", "event", "version", "actor", "details", "hash"):
        table.add_column(column)
    for e in chain:
        details = ", ".join(
            f"{k}={v}"
            for k, v in e.details.items()
            if k not in {"manifest", "gates", "failed_gates"}
        )
        table.add_row(
            str(e.seq), e.time, e.event, e.version or "", e.actor, escape(details[:80]), e.hash[:12]
        )
    console.print(table)
    if verify:
        trusted = trust()
        result = verify_chain(client, name, trust=trusted)
        if not result.ok:
            for problem in result.problems:
                errors.print(f"[bold red]broken:[/] {escape(problem)}")
            errors.print(
                "Governance commands refuse this model until each tag or alias named is "
                "restored to what the chain records.",
                highlight=False,
            )
            raise typer.Exit(EXIT_REFUSED)
        console.print(
            f"[green]verified[/]: {result.events} events, every hash and link intact; "
            f"{escape(trusted.describe())}"
        )


@models_app.command("list")
def models_list() -> None:
    """Each model with its champion, challenger and versions (validation / approval).

    The audit column says whether the model's tags and aliases agree with its audit chain;
    `creditgov audit NAME --verify` names each disagreement.
    """
    from registry.governance import LOCK_PREFIX, verify_chain

    client, _ = governance_client()
    trusted = trust()
    table = Table(title="Registered models", title_justify="left")
    for column in (
        "model", "champion", "previous", "challenger", "versions (validation/approval)", "audit",
    ):  # fmt: skip
        table.add_column(column)
    for model in client.search_registered_models():
        if model.name.startswith(LOCK_PREFIX):
            continue
        aliases = dict(model.aliases or {})
        versions = client.search_model_versions(f"name='{model.name}'")
        listed = ", ".join(
            f"{v.version}:{v.tags.get('validation_status', '?')}/{v.tags.get('approval_status', '?')}"
            for v in sorted(versions, key=lambda v: int(v.version))
        )
        problems = verify_chain(client, model.name, trust=trusted).problems
        audit_ = (
            "ok"
            if not problems
            else f"[red]DISAGREES[/] ({len(problems)} problem{'s' if len(problems) > 1 else ''})"
        )
        table.add_row(
            model.name, str(aliases.get("champion", "")), str(aliases.get("previous", "")),
            str(aliases.get("challenger", "")), listed, audit_,
        )  # fmt: skip
    console.print(table)


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str | None, typer.Argument(help="a version; omit for all")] = None,
) -> None:
    """Tags, gates, lineage and approval of a model's versions."""
    client, _ = governance_client()
    try:
        versions = (
            [client.get_model_version(name, version)]
            if version
            else sorted(
                client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)
            )
        )
    except Exception:
        raise fail(f"{name} {version or ''}: no such model or version", EXIT_BAD_INPUT) from None
    if not versions:
        raise fail(
            f"{name}: no such registered model; `creditgov models list` shows what is",
            EXIT_BAD_INPUT,
        )
    for v in versions:
        table = Table(
            title=f"{name} version {v.version}  aliases: {', '.join(v.aliases or []) or '-'}",
            title_justify="left",
        )
        table.add_column("tag")
        table.add_column("value")
        for key in sorted(v.tags):
            if key == "gates":
                continue
            table.add_row(key, escape(str(v.tags[key])[:100]))
        console.print(table)
