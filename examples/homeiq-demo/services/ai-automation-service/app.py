"""ai-automation-service: proxies synergy statistics from ai-pattern-service (stdlib urllib only)."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from fastapi.responses import JSONResponse

from homeiq_demo import make_app, setting

SERVICE = "ai-automation-service"

app = make_app(SERVICE, "HomeIQ AI automation service")


def pattern_service_url() -> str:
    return setting("AI_PATTERN_SERVICE_URL", "http://ai-pattern-service:8034").rstrip("/")


@app.get("/api/synergies/stats")
def synergy_stats() -> JSONResponse:
    url = f"{pattern_service_url()}/api/v1/synergies/stats"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return JSONResponse(status_code=response.status, content=json.loads(response.read()))
    except urllib.error.HTTPError as err:
        try:
            body = json.loads(err.read())
        except ValueError:
            body = {"detail": err.reason}
        return JSONResponse(status_code=err.code, content=body)
    except (urllib.error.URLError, OSError, ValueError) as err:
        return JSONResponse(status_code=502, content={"detail": f"ai-pattern-service unreachable: {err}"})
