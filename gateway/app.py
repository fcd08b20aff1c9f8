"""The ASGI application."""

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI(title="USDC billing gateway", version="0.1.0")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
