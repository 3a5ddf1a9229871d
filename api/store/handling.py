"""Handling workflow: new → acknowledged → resolved | false_positive, with an audit trail row per action."""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.orm import Session

from api.store.incidents import get_incident
from api.store.models import Handling, HandlingAction, Incident, utcnow


class Action(StrEnum):
    ack = "ack"
    resolve = "resolve"
    false_positive = "false-positive"


TARGET: dict[Action, Handling] = {
    Action.ack: Handling.acknowledged,
    Action.resolve: Handling.resolved,
    Action.false_positive: Handling.false_positive,
}

# Which handling states each action may start from. resolved and false_positive are final.
ALLOWED_FROM: dict[Action, frozenset[Handling]] = {
    Action.ack: frozenset({Handling.new}),
    Action.resolve: frozenset({Handling.new, Handling.acknowledged}),
    Action.false_positive: frozenset({Handling.new, Handling.acknowledged}),
}


class IncidentNotFound(LookupError):
    pass


class InvalidTransition(ValueError):
    pass


@dataclass(frozen=True)
class Actor:
    """Who acts: `name` as the client gave it (free text), and the key that authenticated the request, recorded
    beside it so the audit trail does not rest on what the client claims. `sites`: the key's scope (None = all)."""

    name: str
    key_id: str | None
    key_name: str | None
    sites: Set[str] | None = None


def handle(session: Session, incident_id: str, action: Action, *, actor: Actor, note: str | None) -> HandlingAction:
    """Apply `action` (compare-and-set on the current handling state, so concurrent actions cannot both win).

    An incident outside the actor's sites is IncidentNotFound, like one that does not exist.
    """
    incident = get_incident(session, incident_id, sites=actor.sites)
    if incident is None:
        raise IncidentNotFound(incident_id)
    current = Handling(incident.handling)
    if current not in ALLOWED_FROM[action]:
        allowed = ", ".join(sorted(ALLOWED_FROM[action]))
        raise InvalidTransition(f"cannot {action.value} an incident that is {current.value} (allowed from: {allowed})")
    target = TARGET[action]
    values: dict[str, object] = {"handling": target.value}
    if target == Handling.false_positive:
        values["keep"] = True  # hard negatives: keep the evidence for retraining / tuning
    res = session.execute(
        update(Incident)
        .where(Incident.id == incident_id, Incident.handling == current.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidTransition(f"incident {incident_id} changed concurrently; reload and retry")
    row = HandlingAction(
        incident_id=incident_id,
        action=action.value,
        from_status=current.value,
        to_status=target.value,
        actor=actor.name,
        note=note,
        at=utcnow(),
        key_id=actor.key_id,
        key_name=actor.key_name,
    )
    session.add(row)
    session.flush()
    session.refresh(incident)
    return row
