"""The one schema: queries, mutations and the hardening extensions (on by default)."""

from __future__ import annotations

import logging
from decimal import Decimal

import strawberry
from django.conf import settings
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.schema.config import StrawberryConfig
from strawberry.utils.logging import StrawberryLogger
from strawberry_django.optimizer import DjangoOptimizerExtension

from stats.graphql.documents import CheckedDocuments
from stats.graphql.loaders import BatchingExecutionContext
from stats.graphql.mutations import Mutation
from stats.graphql.queries import Query
from stats.printed import format_decimal

logger = logging.getLogger(__name__)

# Figures are exact decimals, sent as strings without the storage's trailing zeros ("2433", "21.5").
DecimalScalar = strawberry.scalar(
    name="Decimal",
    description='An exact decimal number, as a string: "29568", "21.7".',
    serialize=format_decimal,
    parse_value=lambda v: Decimal(str(v)),
)


def _is_unexpected(error: GraphQLError) -> bool:
    """Mask errors that were not raised on purpose (GraphQLError) or by validation."""
    original = getattr(error, "original_error", None)
    return original is not None and not isinstance(original, GraphQLError)


def extensions() -> list:
    """Extension factories: every request gets fresh instances (never shared state).

    The limits (tokens, depth, aliases, fields, directives, lists) are checked where documents
    are parsed (stats.graphql.limits, through stats.graphql.documents): strawberry's
    QueryDepthLimiter and MaxAliasesLimiter take time exponential in the fragments' fan-out.
    """
    found = [CheckedDocuments, DjangoOptimizerExtension]
    if not settings.DEBUG:
        found.append(lambda: MaskErrors(should_mask_error=_is_unexpected, error_message="Unexpected error."))
    return found


class StatsSchema(strawberry.Schema):
    def _get_custom_context_kwargs(self, operation_extensions=None, *, sync: bool = False) -> dict:
        """graphql-core's executor hides suggestions ("Did you mean ...?") in variable errors unless DEBUG."""
        return {
            **super()._get_custom_context_kwargs(operation_extensions, sync=sync),
            "hide_suggestions": not settings.DEBUG,
        }

    def process_errors(self, errors: list[GraphQLError], execution_context=None) -> None:
        """Unexpected exceptions are logged with their traceback; a client's bad query is one debug line.

        Otherwise anyone could fill the error log with tracebacks of misspelt codes.
        """
        for error in errors:
            if _is_unexpected(error):
                StrawberryLogger.error(error, execution_context)
            else:
                logger.debug("GraphQL request refused: %s", error.message)


schema = StatsSchema(
    query=Query,
    mutation=Mutation,
    extensions=extensions(),
    execution_context_class=BatchingExecutionContext,
    config=StrawberryConfig(disable_field_suggestions=not settings.DEBUG, scalar_map={Decimal: DecimalScalar}),
)
