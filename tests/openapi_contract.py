"""Validate live API answers against query/openapi.yaml (the published contract).

The spec's schemas restate Jaeger's api_v2 JSON model (its query service's ``uimodel``); this
module turns an OpenAPI 3.0 schema into JSON Schema (``nullable`` -> a ``null`` type, component
``$ref`` -> ``$defs``) and checks the status, the content type and the body of a response
against the operation that documents it. An answer the spec does not list is a failure too.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import yaml


@cache
def spec() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(
        resources.files("query").joinpath("openapi.yaml").read_text()
    )
    return doc


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema object -> JSON Schema 2020-12 (recursively)."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if k not in ("nullable", "format")}
    if "$ref" in out:
        out["$ref"] = out["$ref"].replace("#/components/schemas/", "#/$defs/")
    if node.get("nullable"):
        if "type" in out:
            out["type"] = [out["type"], "null"]
        elif "enum" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


def _template(path: str) -> str:
    """The spec path a concrete path belongs to, e.g. /api/traces/abc -> /api/traces/{traceID}."""
    matches = []
    for template in spec()["paths"]:
        pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            matches.append(template)
    if not matches:
        raise AssertionError(f"{path} is not in query/openapi.yaml")
    return min(matches, key=lambda t: t.count("{"))  # literal segments win


def response_schema(method: str, path: str, status: int) -> dict[str, Any] | None:
    op = spec()["paths"][_template(path)][method.lower()]
    responses = op["responses"]
    key = str(status)
    assert key in responses, f"{method} {path}: status {status} is not documented"
    response = responses[key]
    if "$ref" in response:
        response = spec()["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    content = response.get("content")
    if content is None:
        return None
    schema = content["application/json"]["schema"]
    return {
        **to_json_schema(schema),
        "$defs": to_json_schema(spec()["components"]["schemas"]),
    }


def component_schema(name: str) -> dict[str, Any]:
    """A named schema of the spec as JSON Schema, with the spec's other schemas as $defs."""
    return {"$ref": f"#/$defs/{name}", "$defs": to_json_schema(spec()["components"]["schemas"])}


def check(method: str, path: str, status: int, content_type: str, body: bytes) -> Any:
    """The parsed body, after checking it against the documented response; fails otherwise."""
    schema = response_schema(method, path.split("?", 1)[0], status)
    if schema is None:
        return None
    assert content_type.startswith("application/json"), (path, status, content_type)
    doc = json.loads(body)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    return doc
