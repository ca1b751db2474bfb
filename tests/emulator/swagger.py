"""A small Swagger 2.0 traffic validator built on `jsonschema` (draft 4, which Swagger schemas follow).

Why not `oav validate-traffic`: it pulls a large npm tree and its own traffic format; the emulator's traffic log
is already plain JSON, and a page of Python keeps the checks readable. What it handles:
- `$ref`s within and across files (the specs' relative paths to common-types resolve through one registry);
- polymorphism: `discriminator` + `x-ms-discriminator-value` (e.g. `objectType`), dispatching an instance to its
  concrete subtype, with a guard against the subtype's `allOf` looping back to the base;
- `x-ms-enum.modelAsString: true` (open enums: any string), `x-nullable`;
- matching a request to an operation by method and path template (case-insensitive, `{scope}`-style parameters
  spanning segments), then validating the request body and the response body for its status code
  (falling back to `default` for errors; an undeclared success status is an error).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import referencing
from jsonschema import Draft4Validator, ValidationError
from referencing.jsonschema import DRAFT4

MULTI_SEGMENT = {"scope", "resourceId", "roleAssignmentId"}


@dataclass
class Operation:
    file: Path
    method: str
    template: str
    operation_id: str
    regex: re.Pattern[str]
    specificity: int
    spec: dict[str, Any]


def _prepare(node: Any) -> Any:
    """Swagger -> JSON Schema draft 4 adjustments, recursively."""
    if isinstance(node, dict):
        out = {k: _prepare(v) for k, v in node.items()}
        if out.get("x-ms-enum", {}).get("modelAsString") and "enum" in out:
            del out["enum"]
        if out.get("x-nullable") and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if out.get("type") == "file":
            del out["type"]
        return out
    if isinstance(node, list):
        return [_prepare(v) for v in node]
    return node


class SpecSet:
    def __init__(self, specs_root: Path, files: list[Path]) -> None:
        self.root = specs_root
        self.docs: dict[str, dict[str, Any]] = {}
        self.subtypes: dict[tuple[str, str], dict[str, str]] = {}
        for path in sorted(specs_root.rglob("*.json")):
            if "examples" in path.parts:
                continue
            doc = _prepare(json.loads(path.read_text(encoding="utf-8")))
            uri = path.resolve().as_uri()
            for name, definition in doc.get("definitions", {}).items():
                if isinstance(definition, dict):
                    definition["x-def"] = [uri, name]
            self.docs[uri] = doc
            self._index_subtypes(uri, doc)
        registry: referencing.Registry[Any] = referencing.Registry()
        for uri, doc in self.docs.items():
            registry = registry.with_resource(
                uri, referencing.Resource.from_contents(doc, default_specification=DRAFT4)
            )
        self.registry = registry
        self._in_progress: set[tuple[int, str, str]] = set()
        validators = dict(Draft4Validator.VALIDATORS)
        validators["discriminator"] = self._discriminator
        self.validator_cls = jsonschema.validators.extend(Draft4Validator, validators)
        self.operations: list[Operation] = []
        for f in files:
            self._index_operations(f.resolve())

    # -- polymorphism ----------------------------------------------------------------------------------
    def _index_subtypes(self, uri: str, doc: dict[str, Any]) -> None:
        defs = doc.get("definitions", {})
        parents: dict[str, list[str]] = {}
        for name, d in defs.items():
            for part in d.get("allOf", []) if isinstance(d, dict) else []:
                ref = part.get("$ref", "")
                if ref.startswith("#/definitions/"):
                    parents.setdefault(name, []).append(ref.split("/")[-1])
        for name, d in defs.items():
            value = d.get("x-ms-discriminator-value", name) if isinstance(d, dict) else name
            stack = list(parents.get(name, []))
            seen: set[str] = set()
            while stack:
                base = stack.pop()
                if base in seen:
                    continue
                seen.add(base)
                if "discriminator" in defs.get(base, {}):
                    self.subtypes.setdefault((uri, base), {})[value] = name
                stack.extend(parents.get(base, []))

    def _discriminator(self, validator: Any, prop: str, instance: Any, schema: dict[str, Any]) -> Any:
        if not isinstance(instance, dict) or "x-def" not in schema:
            return
        uri, base = schema["x-def"]
        value = instance.get(prop)
        if value is None:
            return
        subtype = self.subtypes.get((uri, base), {}).get(value)
        if subtype is None:
            own = schema.get("x-ms-discriminator-value", base)
            if value != own and self.subtypes.get((uri, base)):
                yield ValidationError(f"unknown {prop} {value!r} for {base}")
            return
        key = (id(instance), uri, subtype)
        if key in self._in_progress:
            return
        self._in_progress.add(key)
        try:
            yield from validator.descend(instance, {"$ref": f"{uri}#/definitions/{subtype}"})
        finally:
            self._in_progress.discard(key)

    # -- schema validation -----------------------------------------------------------------------------
    def errors(self, instance: Any, schema: dict[str, Any], base_uri: str) -> list[str]:
        root = {"$ref": base_uri + schema["$ref"]} if "$ref" in schema and schema["$ref"].startswith("#") else schema
        if "$ref" not in schema:
            root = {"allOf": [schema]}
        resolver = self.registry.resolver(base_uri=base_uri)
        validator = self.validator_cls(root, registry=self.registry, _resolver=resolver)
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]

    def definition_errors(self, file: Path, name: str, instance: Any) -> list[str]:
        uri = file.resolve().as_uri()
        return self.errors(instance, {"$ref": f"#/definitions/{name}"}, uri)

    # -- operations ------------------------------------------------------------------------------------
    def _index_operations(self, file: Path) -> None:
        uri = file.as_uri()
        doc = self.docs[uri]
        for template, ops in doc.get("paths", {}).items():
            if template.count("/") == 1 and template[1:].strip("{}") in MULTI_SEGMENT:
                continue  # "/{roleAssignmentId}" would match any URL; the same calls match the scoped form
            regex, specificity = self._template_regex(template)
            for method, spec in ops.items():
                if method == "parameters":
                    continue
                self.operations.append(
                    Operation(file, method.upper(), template, spec["operationId"], regex, specificity, spec)
                )
        self.operations.sort(key=lambda o: -o.specificity)

    @staticmethod
    def _template_regex(template: str) -> tuple[re.Pattern[str], int]:
        out, pos, literal = "", 0, 0
        for m in re.finditer(r"\{([^}]+)\}", template):
            chunk = template[pos : m.start()]
            literal += len(chunk)
            out += re.escape(chunk)
            out += "(.+)" if m.group(1) in MULTI_SEGMENT else "([^/]+)"
            pos = m.end()
        out += re.escape(template[pos:])
        literal += len(template[pos:])
        return re.compile(f"^{out}/?$", re.IGNORECASE), literal

    def match(self, method: str, url: str) -> Operation | None:
        path = urlsplit(url).path
        for op in self.operations:
            if op.method == method and op.regex.match(path):
                return op
        return None

    def _resolve_param(self, op: Operation, param: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in param:
            ref_file, _, pointer = param["$ref"].partition("#")
            base = op.file if not ref_file else (op.file.parent / ref_file).resolve()
            node: Any = self.docs[base.as_uri()]
            for part in pointer.strip("/").split("/"):
                node = node[part]
            return dict(node)
        return param

    def check_exchange(self, entry: dict[str, Any]) -> tuple[Operation | None, list[str]]:
        """Validate one traffic-log entry; returns (operation or None if unmatched, problems)."""
        req, resp = entry["request"], entry["response"]
        op = self.match(req["method"], req["url"])
        if op is None:
            return None, []
        problems: list[str] = []
        uri = op.file.as_uri()
        params = [self._resolve_param(op, p) for p in op.spec.get("parameters", [])]
        body_param = next((p for p in params if p.get("in") == "body"), None)
        if body_param is not None and req.get("body") is not None:
            schema = copy.deepcopy(body_param["schema"])
            problems += [f"request {e}" for e in self.errors(req["body"], schema, uri)]
        elif body_param is not None and body_param.get("required") and req["method"] in ("PUT", "POST", "PATCH"):
            problems.append("request: required body missing")
        status = str(resp["status"])
        responses = op.spec["responses"]
        declared = responses.get(status)
        if declared is None:
            if int(status) >= 400 and "default" in responses:
                declared = responses["default"]
            else:
                problems.append(f"status {status} is not declared (declared: {sorted(responses)})")
                return op, problems
        schema = declared.get("schema")
        if schema is not None and resp.get("body") is not None:
            problems += [f"response {status} {e}" for e in self.errors(resp["body"], copy.deepcopy(schema), uri)]
        elif schema is not None and resp.get("body") is None and int(status) < 400 and status != "202":
            problems.append(f"response {status}: body missing")
        return op, problems
