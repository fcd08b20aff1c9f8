"""The REST figure's baseline: the gateway's ASGI stack (FastAPI under uvicorn) with nothing
behind it. One POST route at the usage-event path that reads the JSON body and answers
{"ok": true}; no key, no database, no gRPC.

`python -m uvicorn bench.bare_app:app --host 127.0.0.1 --port P --log-level warning`
"""

from typing import Any

from fastapi import FastAPI, Request

app = FastAPI(title="bare endpoint")


@app.post("/api/v1/usage-events")
async def usage_event(request: Request) -> dict[str, Any]:
    await request.json()
    return {"ok": True}
