"""OpenAPI for request bodies the gateway parses itself (to keep JSON numbers exact): each route
declares its schema, and the definitions it refers to join the document's components."""

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
            document.setdefault("components", {}).setdefault("schemas", {}).update(_components)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
