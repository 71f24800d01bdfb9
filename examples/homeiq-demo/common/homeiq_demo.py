"""Shared helper of the HomeIQ demo services: release, settings, /health, bearer tokens.

Every service image copies this file next to its own app.py. The release is baked into
the image at build time (build arg RELEASE -> ENV HOMEIQ_RELEASE), so a container always
reports the release of its image, whatever the environment of the deployment says.
"""
from __future__ import annotations

import hmac
import os
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

STARTED = time.time()


def release() -> str:
    """The release this image was built for."""
    return os.environ.get("HOMEIQ_RELEASE", "unknown")


def setting(name: str, default: str = "") -> str:
    """A setting from the environment (the compose env_file)."""
    return os.environ.get(name, default)


def health_payload(service: str, **extra) -> dict:
    """The common /health body: status, service, release, uptime, plus service details."""
    body = {
        "status": "healthy",
        "service": service,
        "release": release(),
        "uptime_seconds": round(time.time() - STARTED, 1),
    }
    body.update(extra)
    return body


def token_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison; an unset expected token never matches."""
    if not expected or presented is None:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, value = (request.headers.get("authorization", "").split(" ", 1) + [""])[:2]
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def unauthorized(detail: str = "Not authenticated") -> JSONResponse:
    return JSONResponse(status_code=401, content={"detail": detail},
                        headers={"WWW-Authenticate": "Bearer"})


def unhealthy_release() -> bool:
    """Whether this image's release is one the deployment lists in HOMEIQ_UNHEALTHY_RELEASES
    (comma-separated; unset or empty, the default, lists none)."""
    listed = {name.strip() for name in setting("HOMEIQ_UNHEALTHY_RELEASES").split(",") if name.strip()}
    return release() in listed


def make_app(service: str, title: str, health: bool = True) -> FastAPI:
    """A FastAPI app, with the standard /health endpoint unless `health` is false.

    /health answers 503 when the release is listed in HOMEIQ_UNHEALTHY_RELEASES (the domain-shaped
    demo sets it for one service per domain); without that variable it always answers 200.
    """
    app = FastAPI(title=title, version=release())

    if health:
        @app.get("/health")
        def get_health():
            if unhealthy_release():
                body = health_payload(service, reason="release listed in HOMEIQ_UNHEALTHY_RELEASES")
                body["status"] = "unhealthy"
                return JSONResponse(status_code=503, content=body)
            return health_payload(service)

    return app
