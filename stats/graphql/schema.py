"""The one schema: queries, mutations and the hardening extensions (on by default)."""

from __future__ import annotations

import functools
import logging
from decimal import Decimal

import strawberry
from django.conf import settings
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.utils.logging import StrawberryLogger
from strawberry_django.optimizer import DjangoOptimizerExtension

from stats.graphql.compiled import CompiledExecutor
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


@functools.cache
def _limit_rules(limiter, limit: int) -> tuple:
    """The validation rules of a limiter for one limit, built once.

    Each limiter instance builds new rule classes, and the validation cache keys on the rules:
    with fresh classes per request it never hit, and every request validated its document again.
    """
    return tuple(limiter(limit).validation_rules)


def extensions() -> list:
    """Extension factories: every request gets fresh instances (never shared state)."""
    found = [
        lambda: AddValidationRules(list(_limit_rules(QueryDepthLimiter, settings.GRAPHQL_MAX_DEPTH))),
        lambda: AddValidationRules(list(_limit_rules(MaxAliasesLimiter, settings.GRAPHQL_MAX_ALIASES))),
        lambda: MaxTokensLimiter(max_token_count=settings.GRAPHQL_MAX_TOKENS),
        DjangoOptimizerExtension,
        # Dashboards repeat the same documents: parse and validate each one once per process.
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    if not settings.DEBUG:
        found.append(lambda: MaskErrors(should_mask_error=_is_unexpected, error_message="Unexpected error."))
    return found


class StatsSchema(strawberry.Schema):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.compiled = CompiledExecutor(self)

    def execute_sync(self, query, variable_values=None, context_value=None, root_value=None, operation_name=None,
                     allowed_operation_types=None, operation_extensions=None) -> ExecutionResult:  # fmt: skip
        """A document strawberry has answered cleanly before runs compiled (stats.graphql.compiled)."""
        reads_allowed = allowed_operation_types is None or OperationType.QUERY in allowed_operation_types
        if reads_allowed and root_value is None and settings.GRAPHQL_COMPILED:
            result = self.compiled.execute(query, variable_values, context_value, operation_name)
            if result is not None:
                return result
        result = super().execute_sync(
            query, variable_values=variable_values, context_value=context_value, root_value=root_value,
            operation_name=operation_name, allowed_operation_types=allowed_operation_types,
            operation_extensions=operation_extensions,
        )  # fmt: skip
        if not result.errors and isinstance(query, str) and settings.GRAPHQL_COMPILED:
            self.compiled.learn(query, operation_name)
        return result

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
