"""Staff mutations. They go through the same audited services as admin edits and return
problems as data (OperationInfo), never as exceptions."""

from __future__ import annotations

from decimal import Decimal
from enum import Enum
from typing import Annotated

import strawberry
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from strawberry.types import Info

from stats.graphql.types import Flag, Observation
from stats.services.errors import BusyError, ConflictError
from stats.services.observations import observation_correct, observation_flag

PERMISSION = "stats.change_observation"


@strawberry.enum(description="What kind of problem a mutation met.")
class ProblemKind(Enum):
    PERMISSION = strawberry.enum_value("permission", description="The user may not do this.")
    VALIDATION = strawberry.enum_value("validation", description="An input value is not acceptable.")
    CONFLICT = strawberry.enum_value("conflict", description="Someone else changed the object meanwhile.")
    BUSY = strawberry.enum_value(
        "busy", description="Another write (an import, usually) holds the object: try again in a moment."
    )


@strawberry.type(description="One problem a mutation met.")
class OperationMessage:
    kind: ProblemKind = strawberry.field(description="What kind of problem.")
    message: str = strawberry.field(description="What is wrong and what to do, in words.")
    field: str | None = strawberry.field(description="The input field at fault, if one is.")


@strawberry.type(description="Why a mutation changed nothing: its problems, as data.")
class OperationInfo:
    messages: list[OperationMessage] = strawberry.field(description="The problems.")


ObservationResult = Annotated[
    Observation | OperationInfo,
    strawberry.union(
        "ObservationResult",
        description="The changed observation, or what went wrong (messages with kind, field and text).",
    ),
]


def _refused(message: str, kind: ProblemKind = ProblemKind.PERMISSION, field: str | None = None) -> OperationInfo:
    return OperationInfo(messages=[OperationMessage(kind=kind, message=message, field=field)])


def _run(info: Info, observation_id: strawberry.ID, action) -> Observation | OperationInfo:
    """Check the user and the id, then run ``action(user, id)``; problems come back as data."""
    user = info.context.request.user
    if not user.is_authenticated:
        return _refused("log in as a data editor to change data (anonymous requests are read-only)")
    if not user.has_perm(PERMISSION):
        return _refused(f"your account cannot change observations (needs the {PERMISSION} permission)")
    text = str(observation_id).strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        return _refused(f"{str(observation_id)[:40]!r} is not an observation id (a whole number)",
                        kind=ProblemKind.VALIDATION, field="id")  # fmt: skip
    try:
        return action(user, int(text))
    except ConflictError as exc:
        return _refused(str(exc), kind=ProblemKind.CONFLICT, field="expectedVersion")
    except BusyError as exc:
        return _refused(str(exc), kind=ProblemKind.BUSY)
    except ValidationError as exc:
        messages = []
        for field, errors in exc.message_dict.items() if hasattr(exc, "error_dict") else [(None, exc.messages)]:
            field = None if field == NON_FIELD_ERRORS else field
            messages += [OperationMessage(kind=ProblemKind.VALIDATION, message=m, field=field) for m in errors]
        return OperationInfo(messages=messages)


ObservationId = Annotated[strawberry.ID, strawberry.argument(description="The observation's id.")]
ExpectedVersion = Annotated[
    int | None,
    strawberry.argument(
        description="The version you read; the change is refused if someone changed the figure since (null: no check)."
    ),
]


@strawberry.type(description="Change the warehouse (staff only; every change is audited with its reason).")
class Mutation:
    @strawberry.mutation(
        description="Record the right value of a printed figure (the printed value stays); value null removes it."
    )
    def correct_observation(
        self,
        info: Info,
        id: ObservationId,
        value: Annotated[
            Decimal | None, strawberry.argument(description="The right value; null removes the correction.")
        ],
        reason: Annotated[str, strawberry.argument(description="How the right value was derived (kept in the audit).")],
        expected_version: ExpectedVersion = None,
    ) -> ObservationResult:
        return _run(
            info,
            id,
            lambda user, observation_id: observation_correct(
                observation_id=observation_id, value=value, reason=reason, user=user, expected_version=expected_version
            ),
        )

    @strawberry.mutation(description="Set (or clear, with flag null) a data-quality flag; the note says what is wrong.")
    def flag_observation(
        self,
        info: Info,
        id: ObservationId,
        flag: Annotated[Flag | None, strawberry.argument(description="The problem; null clears the flag.")],
        note: Annotated[str, strawberry.argument(description="What is wrong, in words (shown with the figure).")],
        expected_version: ExpectedVersion = None,
    ) -> ObservationResult:
        return _run(
            info,
            id,
            lambda user, observation_id: observation_flag(
                observation_id=observation_id,
                flag=flag.value if flag else "",
                note=note,
                user=user,
                expected_version=expected_version,
            ),
        )
