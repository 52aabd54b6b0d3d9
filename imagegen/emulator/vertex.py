"""Vertex AI's ``generateContent`` routes, auth and error shapes, and an OAuth token endpoint.

What google-genai 3.4.0 sends with ``vertexai=True`` (checked by pointing it at the emulator)::

    POST /{v1beta1|v1}/publishers/google/models/{m}:generateContent        x-goog-api-key: KEY
    POST /{v1beta1|v1}/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent
                                                                  Authorization: Bearer TOKEN

Bodies are the Gemini API's (camelCase, ``inlineData``), so the request is parsed and answered
by the same code as the Gemini routes (:mod:`.wire`, :mod:`.answers`) with the same scripted
outcomes; only where Vertex differs does this module answer itself:

- auth: no credential is a 401 UNAUTHENTICATED (CREDENTIALS_MISSING); a wrong key (with
  ``expected_key``) a 400 API_KEY_INVALID; a bearer token this emulator did not issue (with
  ``expected_key``) a 401 (ACCESS_TOKEN_TYPE_UNSUPPORTED);
- an unknown model: 404 "Publisher Model `...` was not found or your project does not have
  access to it";
- scripted errors keep a scripted message (its ``{credential}`` replaced by the request's key
  or token, to test that an echoed credential is scrubbed); a default one becomes Vertex's:
  a 429 "Resource exhausted" without RetryInfo (unless the script gives ``retry_delay``), a
  quota named in the message ("Quota exceeded for aiplatform.googleapis.com/{quota_id} ..."),
  a 403 that is an IAM denial (IAM_PERMISSION_DENIED) unless the script gives another reason
  (BILLING_DISABLED, SERVICE_DISABLED);
- a filtered answer carries ``finishMessage`` (and, for SAFETY, a blocked safety rating), a
  blocked prompt ``blockReasonMessage``, as Vertex's do.

``POST /oauth2/token`` is a Google OAuth token endpoint for credentials whose ``token_uri``
points here: a service account key file (``GOOGLE_APPLICATION_CREDENTIALS``; google-auth keeps
its ``token_uri``, but forces Google's for ``authorized_user`` files) or user credentials built
with ``token_uri``. It answers with a fresh ``ya29.emulator-...`` token, or with
``invalid_grant`` (google-auth's RefreshError) for an account or refresh token starting with
"revoked". ``vertex_state(emu)`` counts
routes, auth kinds and tokens.
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson

from ..providers.vertex import MODELS
from . import wire
from .answers import Answer
from .exchange import PerEmulator
from .outcomes import Outcome, default_message

TOKEN_PATH = "/oauth2/token"
_ROUTE = re.compile(
    r"^/(?P<version>v1|v1beta1)/"
    r"(?:projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/)?"
    r"publishers/google/models/(?P<model>[^/:]+):generateContent$"
)
_SERVICE = "aiplatform.googleapis.com"
#: Models the Vertex routes serve: the ones the Vertex provider offers, Vertex's GA ids. The
#: preview ids, still served by the Gemini routes, were discontinued on Vertex in July 2026 and
#: answer 404 here.
KNOWN_MODELS = frozenset(MODELS)

#: Vertex's messages for the codes a script leaves without one.
MESSAGES = {
    429: "Resource exhausted. Please try again later. Please refer to "
    "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
    504: "Deadline expired before operation could complete.",
}
#: Messages of a 403 whose ErrorInfo reason the script names (Google Cloud's wording).
REASON_MESSAGES = {
    "BILLING_DISABLED": "This API method requires billing to be enabled. Please enable billing "
    "on project #{project} by visiting https://console.developers.google.com/billing/enable"
    "?project={project} then retry.",
    "SERVICE_DISABLED": "Vertex AI API has not been used in project {project} before or it is "
    "disabled. Enable it by visiting https://console.developers.google.com/apis/api/"
    "aiplatform.googleapis.com/overview?project={project} then retry.",
}
#: ``finishMessage`` Vertex gives a filtered image (close to the service's own words).
FINISH_MESSAGES = {
    "IMAGE_SAFETY": "Unable to show the generated image. The image was filtered out because it "
    "violated Google's Generative AI Prohibited Use policy. You will not be charged for "
    "blocked images.",
    "IMAGE_PROHIBITED_CONTENT": "Unable to show the generated image. The image was filtered out "
    "because it contains prohibited content. You will not be charged for blocked images.",
    "IMAGE_RECITATION": "Unable to show the generated image. The image was filtered out because "
    "it resembles existing content too closely.",
}


@dataclass(frozen=True, slots=True)
class Route:
    """A Vertex ``generateContent`` path: API version, model, and project/location (None in
    express mode)."""

    version: str
    model: str
    project: str | None
    location: str | None

    @property
    def resource(self) -> str:
        """The model's resource name as Vertex's messages spell it."""
        base = f"publishers/google/models/{self.model}"
        if self.project:
            return f"projects/{self.project}/locations/{self.location}/{base}"
        return base


@dataclass
class VertexState:
    """Per emulator: ``routes`` counts "express" and "project" requests, ``auth`` "api_key"
    and "bearer"; ``paths`` every path asked, ``tokens`` issued, ``refreshes`` answered."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    routes: Counter[str] = field(default_factory=Counter)
    auth: Counter[str] = field(default_factory=Counter)
    paths: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    refreshes: int = 0


vertex_state: PerEmulator[VertexState] = PerEmulator(VertexState)


def match(path: str) -> Route | None:
    """The route of a ``generateContent`` path, or None."""
    found = _ROUTE.match(path)
    if found is None:
        return None
    return Route(found["version"], found["model"], found["project"], found["location"])


def error_info(reason: str, **metadata: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": _SERVICE, **metadata},
    }


def check_auth(
    emulator: object,
    route: Route,
    headers: Any,
    query: str,
    expected_key: str | None,
) -> str:
    """The request's credential (its key or bearer token); raises WireError as Vertex answers
    a request without valid credentials."""
    state = vertex_state(emulator)
    key = headers.get("x-goog-api-key") or parse_qs(query).get("key", [None])[0]
    authorization = headers.get("Authorization") or ""
    token = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    with state.lock:
        state.paths.append(f"/{route.version}/{route.resource}:generateContent")
        state.routes["project" if route.project else "express"] += 1
        state.auth["api_key" if key else "bearer" if token else "none"] += 1
        issued = token in state.tokens
    if key:
        if expected_key is not None and key != expected_key:
            raise wire.WireError(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [error_info("API_KEY_INVALID")],
            )
        return str(key)
    if not token:
        raise wire.WireError(
            401,
            "UNAUTHENTICATED",
            "Request is missing required authentication credential. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            [error_info("CREDENTIALS_MISSING")],
        )
    if expected_key is not None and not issued and token != expected_key:
        raise wire.WireError(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, "
            "login cookie or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project.",
            [error_info("ACCESS_TOKEN_TYPE_UNSUPPORTED")],
        )
    return token


def model_not_found(route: Route) -> wire.WireError:
    return wire.WireError(
        404,
        "NOT_FOUND",
        f"Publisher Model `{route.resource}` was not found or your project does not have access "
        "to it. Please ensure you are using a valid model version. For more information, see: "
        "https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions",
    )


def error_body(outcome: Outcome, route: Route, credential: str = "") -> bytes:
    """A scripted error as Vertex shapes it (see the module docstring). A scripted message's
    ``{credential}`` becomes the key or token the request carried: a server that echoes it."""
    code = outcome.code
    status = outcome.status or "UNKNOWN"
    scripted = outcome.message != default_message(code)
    message = (outcome.message or "") if scripted else MESSAGES.get(code, outcome.message or "")
    if scripted:
        message = message.replace("{credential}", credential)
    details: list[dict[str, Any]] = []
    if outcome.quota_id and not scripted:
        message = (
            f"Quota exceeded for {_SERVICE}/{outcome.quota_id} with base model: {route.model}. "
            "Please submit a quota increase request. "
            "https://cloud.google.com/vertex-ai/docs/generative-ai/quotas-genai."
        )
    if code == 403 and not outcome.reason:
        if not scripted:
            message = (
                f"Permission 'aiplatform.endpoints.predict' denied on resource "
                f"'//{_SERVICE}/{route.resource}' (or it may not exist)."
            )
        details.append(
            error_info("IAM_PERMISSION_DENIED", permission="aiplatform.endpoints.predict")
        )
    elif outcome.reason:
        project = route.project or "0"
        if not scripted and outcome.reason in REASON_MESSAGES:
            message = REASON_MESSAGES[outcome.reason].format(project=project)
        details.append(error_info(outcome.reason, consumer=f"projects/{project}"))
    if outcome.retry_delay:
        details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": outcome.retry_delay}
        )
    return wire.error_body(code, status, message, details)


def answer(
    request: wire.ParsedRequest, outcome: Outcome, route: Route, credential: str = ""
) -> Answer | None:
    """Vertex's own answer where it differs from the Gemini API's, else None."""
    if outcome.kind == "error":
        return Answer(outcome.code, error_body(outcome, route, credential))
    if outcome.kind == "prompt_blocked":
        reason = outcome.reason or "SAFETY"
        feedback = {
            "blockReason": reason,
            "blockReasonMessage": "The prompt could not be submitted. This prompt contains "
            "sensitive words that violate Google's Responsible AI practices. Try rephrasing "
            "the prompt.",
        }
        return Answer(200, _body(request, {"promptFeedback": feedback}))
    if outcome.kind == "finish":
        reason = outcome.reason or "OTHER"
        candidate: dict[str, Any] = {"finishReason": reason, "index": 0}
        if reason in FINISH_MESSAGES:
            candidate["finishMessage"] = FINISH_MESSAGES[reason]
        if reason == "SAFETY":
            candidate["safetyRatings"] = [
                {
                    "category": "HARM_CATEGORY_SEXUALLY_EXPLICIT",
                    "probability": "HIGH",
                    "blocked": True,
                }
            ]
        return Answer(200, _body(request, {"candidates": [candidate]}))
    return None


def _body(request: wire.ParsedRequest, fields: dict[str, Any]) -> bytes:
    usage = wire.usage_metadata(request, image=False) | {"trafficType": "ON_DEMAND"}
    return orjson.dumps(
        {
            **fields,
            "usageMetadata": usage,
            "modelVersion": request.model,
            "createTime": "2026-12-01T00:00:00.000000Z",
            "responseId": request.digest[:22],
        }
    )


JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def token_answer(emulator: object, body: bytes) -> tuple[int, bytes]:
    """Answer a token request at :data:`TOKEN_PATH` (form-encoded, as google-auth posts it):
    a refresh token (user credentials) or a service account's signed JWT (not verified). A
    refresh token, or a service account email, starting with "revoked" is refused."""
    form = parse_qs(body.decode("utf-8", "replace"))
    grant = (form.get("grant_type") or [""])[0]
    if grant == "refresh_token":
        who = (form.get("refresh_token") or [""])[0]
    elif grant == JWT_BEARER:
        who = str(_jwt_claims((form.get("assertion") or [""])[0]).get("iss", ""))
    else:
        who = "revoked: unsupported grant"
    if not who or who.startswith("revoked"):
        error = {
            "error": "invalid_grant",
            "error_description": "Token has been expired or revoked.",
        }
        return 400, orjson.dumps(error)
    token = f"ya29.emulator-{uuid.uuid4().hex}"
    state = vertex_state(emulator)
    with state.lock:
        state.tokens.add(token)
        state.refreshes += 1
    return 200, orjson.dumps(
        {
            "access_token": token,
            "expires_in": 3599,
            "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/cloud-platform",
        }
    )


def _jwt_claims(assertion: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (the emulator trusts any service account)."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}
