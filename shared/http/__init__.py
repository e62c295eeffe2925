"""The HTTP edge every service shares: the request pipeline, command routes, problem+json, health
and metrics."""

from shared.http.admin_routes import (
    ParkedAdmin,
    admin_routes,
)
from shared.http.api_docs import (
    ASSETS,
    ASSETS_PATH,
    DOCS_PATH,
    serve_docs,
)
from shared.http.app import (
    create_app,
)
from shared.http.audit_routes import (
    StoredLog,
    audit_routes,
)
from shared.http.bearer import (
    Bearer,
    authenticated,
    bearer_token,
)
from shared.http.body_limit import (
    MAX_BODY_BYTES,
    BodyLimit,
    is_json,
    too_large,
)
from shared.http.connections import (
    BoundedHttpTools,
    HttpLimits,
    serving_options,
)
from shared.http.openapi import (
    COMMAND_PROBLEMS,
    PROBLEM_SCHEMA,
    READ_PROBLEMS,
    document_problems,
    problem_responses,
)
from shared.http.operations import (
    HEALTH_CHECK_SECONDS,
    HealthCheck,
    Observe,
    RequestMetrics,
    add_operations,
)
from shared.http.paths import (
    ENCODED_SLASH,
    RefuseEncodedSlash,
    has_encoded_slash,
)
from shared.http.pipeline import (
    Handle,
    Lane,
    Problems,
    ServiceApp,
)
from shared.http.problems import (
    DEPENDENCY_ERRORS,
    PROBLEM,
    PROBLEM_TYPES,
    RETRY_AFTER_SECONDS,
    TITLES,
    ConnectionLost,
    add_problem_handlers,
    problem,
    title_of,
    type_of,
)
from shared.http.routes import (
    IDEMPOTENCY_HEADER,
    CommandRoute,
    Commands,
    Edge,
    add_command_routes,
    idempotency_for,
)
from shared.http.schemas import (
    EMAIL_PATTERN,
    ID_PATTERN,
    PATTERN_MESSAGES,
    CommandAccepted,
    Email,
    Id,
    LongText,
    Number,
    PathId,
    RequestBody,
    Rfc3339Time,
    Scores,
    ShortText,
    TimeZoneName,
    in_utc,
)

__all__ = [
    "ASSETS",
    "ASSETS_PATH",
    "COMMAND_PROBLEMS",
    "DEPENDENCY_ERRORS",
    "DOCS_PATH",
    "EMAIL_PATTERN",
    "ENCODED_SLASH",
    "HEALTH_CHECK_SECONDS",
    "IDEMPOTENCY_HEADER",
    "ID_PATTERN",
    "MAX_BODY_BYTES",
    "PATTERN_MESSAGES",
    "PROBLEM",
    "PROBLEM_SCHEMA",
    "PROBLEM_TYPES",
    "READ_PROBLEMS",
    "RETRY_AFTER_SECONDS",
    "TITLES",
    "Bearer",
    "BodyLimit",
    "BoundedHttpTools",
    "CommandAccepted",
    "CommandRoute",
    "Commands",
    "ConnectionLost",
    "Edge",
    "Email",
    "Handle",
    "HealthCheck",
    "HttpLimits",
    "Id",
    "Lane",
    "LongText",
    "Number",
    "Observe",
    "ParkedAdmin",
    "PathId",
    "Problems",
    "RefuseEncodedSlash",
    "RequestBody",
    "RequestMetrics",
    "Rfc3339Time",
    "Scores",
    "ServiceApp",
    "ShortText",
    "StoredLog",
    "TimeZoneName",
    "add_command_routes",
    "add_operations",
    "add_problem_handlers",
    "admin_routes",
    "audit_routes",
    "authenticated",
    "bearer_token",
    "create_app",
    "document_problems",
    "has_encoded_slash",
    "idempotency_for",
    "in_utc",
    "is_json",
    "problem",
    "problem_responses",
    "serve_docs",
    "serving_options",
    "title_of",
    "too_large",
    "type_of",
]
