"""OpenAPI for request bodies the gateway parses itself (to keep JSON numbers exact): each route
declares its schema, and the definitions it refers to join the document's components. Invalid
input is answered 400 with the error envelope, never FastAPI's 422, so the document has no 422."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

_components: dict[str, Any] = {}


def body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` of a route taking `model` as its JSON body."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    _components.update(schema.pop("$defs", {}))
    _components[model.__name__] = schema
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, routes=app.routes, description=app.description
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(_components)
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            for operations in document["paths"].values():
                for operation in operations.values():
                    operation["responses"].pop("422", None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
