"""`POST /v0/gql`: the GraphQL subset of Inngest's dev server that the official SDKs' test
helpers query (runs with status and output, trigger payloads, step traces with outputs, an
event's runs), executed by graphql-core over the schema in `schema.py`.

Answers follow GraphQL over HTTP as gqlgen (Inngest's server) does: a query that cannot be
parsed or does not fit the schema gets 422 with `errors`; a query that runs gets 200 with
`data` and, for fields that failed (an unknown run, a bad id), `errors`. Queries are bounded
(text size, and their cost: `limits.py`); an unexpected failure is logged and answered as "internal error".
"""

from __future__ import annotations

import logging
from typing import Any

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    execute,
    parse,
    validate,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from outlast.core import jsonutil
from outlast.errors import StoreError
from outlast.server.body import BodyTooLargeError, read_body
from outlast.server.inngest_gql import limits
from outlast.server.inngest_gql.loader import Loader, QueryError
from outlast.server.inngest_gql.resolvers import RESOLVERS
from outlast.server.inngest_gql.schema import build
from outlast.server.services import services

log = logging.getLogger("outlast.server")
MAX_QUERY_BYTES = 64 * 1024


def _executable_schema() -> GraphQLSchema:
    schema = build()
    query_type = schema.query_type
    assert isinstance(query_type, GraphQLObjectType)
    for name, resolver in RESOLVERS.items():
        query_type.fields[name].resolve = resolver
    return schema


#: the schema with its resolvers: built once, it holds no state of any server
SCHEMA = _executable_schema()


async def endpoint(request: Request) -> Response:
    refusal = services(request).bearer.refusal(request, what="the GraphQL API (/v0/gql)")
    if refusal:
        return _errors(401, refusal)
    try:
        payload = jsonutil.loads(await read_body(request, MAX_QUERY_BYTES))
    except BodyTooLargeError as exc:
        return _errors(413, str(exc))
    except ValueError as exc:
        return _errors(400, f"request body is not valid JSON: {exc}")
    problem = _payload_problem(payload)
    if problem:
        return _errors(400, problem)
    try:
        document = parse(payload["query"])
    except GraphQLError as exc:
        return JSONResponse({"errors": [exc.formatted], "data": None}, status_code=422)
    errors = limits.cost_errors(document) or validate(SCHEMA, document)
    if errors:
        return JSONResponse({"errors": [e.formatted for e in errors], "data": None}, status_code=422)
    result = execute(
        SCHEMA,
        document,
        context_value={"loader": Loader(services(request).engine)},
        variable_values=payload.get("variables") or None,
        operation_name=payload.get("operationName"),
    )
    if not isinstance(result, ExecutionResult):
        result = await result
    return _result(result)


ROUTES: list[BaseRoute] = [Route("/v0/gql", endpoint, methods=["POST"])]


def _payload_problem(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return "the body must be a JSON object with a 'query'"
    if not isinstance(payload.get("query"), str) or not payload["query"].strip():
        return "'query' must be a non-empty string"
    if payload.get("variables") is not None and not isinstance(payload["variables"], dict):
        return "'variables' must be an object"
    if payload.get("operationName") is not None and not isinstance(payload["operationName"], str):
        return "'operationName' must be a string"
    return None


def _result(result: ExecutionResult) -> Response:
    """The result as JSON; errors that are not the API's own answers are logged and made opaque."""
    errors = []
    for error in result.errors or []:
        original = error.original_error
        if original is not None and not isinstance(original, (QueryError, GraphQLError)):
            if isinstance(original, StoreError):
                error.message = f"store unavailable, retry: {original}"
            else:
                log.error("GraphQL resolver failed at %s", error.path, exc_info=original)
                error.message = "internal error"
        errors.append(error.formatted)
    body: dict[str, Any] = {"data": result.data}
    if errors:
        body["errors"] = errors
    answer = jsonutil.encode(body)
    if len(answer) > limits.MAX_ANSWER_BYTES:
        return _errors(
            200, f"the answer is {len(answer)} bytes, the limit is {limits.MAX_ANSWER_BYTES}; ask for fewer fields"
        )
    return Response(answer, media_type="application/json")


def _errors(status: int, message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message}], "data": None}, status_code=status)
