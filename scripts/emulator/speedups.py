"""moto's per-request costs that no answer depends on, removed (each found with py-spy over the end-to-end
tests; tests/test_speedups.py compares moto's answers without and with them, byte for byte).

- moto's dispatcher lists its own package directory on disk for every request
  (`backends.list_of_moto_modules`, a listdir and a hundred isdir calls); the list cannot change while
  a server runs, so it is read once.
- `TaggedEC2Resource.get_tags` asks `describe_tags` with a resource-id filter, which compiles a regex
  and scans every tag of the region for each resource serialized (quadratic in a fleet's size); the same
  list is read here straight from the backend's {resource id: {key: value}} map. The filter only ever
  matched the exact id (EC2 ids hold no wildcard), and the entries keep their order and fields.
- Every `backends[account]` lookup (several per instance per tick) checked the backend dict against a
  list of every service's backend dict with a Python `__eq__` each: once that check has passed, it is not
  repeated until the next reset ends (a reset empties the list).
- A reset (`POST /moto-api/reset`, between the emulator's tests) re-initialised every region's backend of
  every service in place (EC2's loads its catalogue of AMIs, each with a volume and a snapshot) and then
  dropped them all (`backend.clear()`): a backend is made afresh on its next use either way. Only the
  dropping is kept. (The re-initialisations also made backends of other services on the way, which
  outlived the reset unregistered.)
- Each request listed every function of its response class with `inspect.getmembers` (hundreds for
  EC2) to ask whether one name is among them; the same question is asked of that one name.
- The response serializer asks, for every field of every object it writes, which attribute names may
  hold the value (six alias providers built per field). The answer depends only on the picker's class,
  the object's class, the field and its shape (name, type, wire name, the structure it is in), so it is
  kept per those; objects carrying their own `Meta` are asked afresh each time.
- Timestamps that moto keeps as strings are parsed back (dateutil) for every answer that shows them;
  a string's rendering in a given format is kept (datetimes are rendered afresh: equal instants in other
  time zones render differently).
- xmltodict checks every element name of every answer character by character; a name found valid once
  is valid again.
- Every error answer built the service's table of error shapes afresh (moto makes a new, empty
  `ErrorLookupFactory` per error); the table depends only on the service's model, so one is kept per service.
- Flask, in moto's debug mode, wraps every request's (empty) `files` in a helper that only improves a
  developer's error message for a form upload; no AWS call here uploads a file.
- Every DescribeTargetHealth answer builds FakeHealthStatus objects, and moto keeps every model object
  ever built for its state dump (`GET /moto-api/data.json`): a read is not state, so those are not kept
  (the dump's `elbv2.FakeHealthStatus` is empty instead of growing with every read).
- The state dump (`GET /moto-api/data.json`, which the tests read to check that a refused command changed
  nothing) read every public attribute of every model object twice and JSON-encoded each value twice:
  once to see whether it can be, once more in the whole answer. Each is read and encoded once here and
  the answer is joined from those pieces, with json.dumps' separators: the same bytes, in about half
  the time (a seeded server's dump holds 1 300 catalogue images and their snapshots per EC2 region).
"""

from __future__ import annotations

import functools
import inspect


def install() -> None:
    _dispatcher_modules()
    _ec2_tags()
    _backend_lookup()
    _method_lookup()
    _attribute_picker()
    _timestamps()
    _xml_names()
    _error_tables()
    _no_upload_hints()
    _health_reads_untracked()
    _state_dump()


def _dispatcher_modules() -> None:
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = functools.cache(lambda: modules)


def _ec2_tags() -> None:
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    def get_tags(self) -> list[dict[str, str]]:
        if not self.id:
            return []
        tags = self.ec2_backend.tags.get(self.id)  # .get: no empty entry is created in the defaultdict
        if not tags:
            return []
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
        return [{"resource_id": self.id, "key": k, "value": v, "resource_type": kind} for k, v in list(tags.items())]

    TaggedEC2Resource.get_tags = get_tags


def _backend_lookup() -> None:
    from moto.core.base_backend import BackendDict, backend_lock

    create = BackendDict._create_account_specific_backend
    resets = [0]  # how many resets have ended

    def create_once(self, account_id: str) -> None:
        # Known to this dict and checked since the last reset ended: registered, nothing to do. (A reset
        # empties the dicts and the list; the count keeps the check true however an entry came to be.)
        if dict.__contains__(self, account_id) and self.__dict__.get("_la_checked") == resets[0]:
            return
        create(self, account_id)
        self._la_checked = resets[0]

    def reset_all(cls) -> None:
        # moto's reset minus the re-initialisation of what it then drops (see the module's doc).
        try:
            with backend_lock:
                for backend_dict in BackendDict._instances:
                    backend_dict.clear()
                BackendDict._instances.clear()
        finally:
            resets[0] += 1

    BackendDict._create_account_specific_backend = create_once
    BackendDict.reset = classmethod(reset_all)


class _Functions:
    """`name in _Functions(cls)` is `name in method_names_from_class(cls)` (the names `getattr` finds
    on the class as plain functions), asked of one name."""

    __slots__ = ("cls",)

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and inspect.isfunction(getattr(self.cls, name, None))


def _method_lookup() -> None:
    from moto.core import responses

    responses.method_names_from_class = _Functions  # its only caller asks `action in` the result


def _attribute_picker() -> None:
    from moto.core.constants import MISSING
    from moto.core.serialize import AttributePicker, AttributePickerContext, ResponseSerializer
    from moto.core.utils import get_value as pick

    original = ResponseSerializer.get_value
    possible: dict[tuple, list[str]] = {}

    def get_value(self, value, key, shape):
        picker = self._value_picker
        if not isinstance(picker, AttributePicker) or type(picker).__call__ is not AttributePicker.__call__:
            return original(self, value, key, shape)
        parent = getattr(shape, "parent", None)
        cacheable = "Meta" not in getattr(value, "__dict__", ())
        k = None
        keys = None
        if cacheable:
            k = (type(picker), tuple(picker.alias_providers), type(value), key, self.service_model.service_name,
                 None if shape is None else (shape.name, shape.type_name, shape.serialization.get("name")),
                 None if parent is None else (parent.name, parent.type_name))
            keys = possible.get(k)
        if keys is None:
            context = AttributePickerContext(obj=value, key=key, shape=shape, operation_model=self.operation_model,
                                             service_model=self.service_model, key_path=".".join(self.path))
            keys = list(picker.get_possible_keys(context))
            if cacheable:
                possible[k] = keys
        for possible_key in keys:
            found = pick(value, possible_key, MISSING)
            if found is not MISSING:
                break
        else:
            found = None
        if picker.response_transformers:  # as AttributePicker.__call__ does
            key_path = f"{'.'.join(self.path)}.{key}"
            for transform_path, transform in picker.response_transformers.items():
                if key_path.endswith(transform_path):
                    return transform(found)
        return found

    ResponseSerializer.get_value = get_value


def _timestamps() -> None:
    from moto.core.serialize import TimestampSerializer

    convert = TimestampSerializer._convert_timestamp_to_str
    rendered: dict[tuple, object] = {}

    def convert_once(self, value, timestamp_format: str):
        if type(value) not in (str, int, float):
            return convert(self, value, timestamp_format)
        k = (type(self), type(value), value, timestamp_format)
        out = rendered.get(k)
        if out is None:
            out = convert(self, value, timestamp_format)
            if len(rendered) < 100_000:
                rendered[k] = out
        return out

    TimestampSerializer._convert_timestamp_to_str = convert_once


def _xml_names() -> None:
    import xmltodict

    validate = xmltodict._validate_name
    valid: set[tuple[str, str]] = set()

    def validate_once(value, kind):
        if type(value) is str and (value, kind) in valid:
            return
        validate(value, kind)  # raises for an invalid name, as before
        if type(value) is str and len(valid) < 100_000:
            valid.add((value, kind))

    xmltodict._validate_name = validate_once


def _error_tables() -> None:
    from moto.core.errors import ErrorLookupFactory

    shared: dict = {}

    def init(self) -> None:
        self._error_lut_cache = shared

    ErrorLookupFactory.__init__ = init


def _no_upload_hints() -> None:
    from flask import debughelpers

    debughelpers.attach_enctype_error_multidict = lambda request: None


def _health_reads_untracked() -> None:
    from moto.elbv2.models import FakeHealthStatus

    FakeHealthStatus.__new__ = lambda cls, *args, **kwargs: object.__new__(cls)


def _state_dump() -> None:
    import json
    import types
    from json.encoder import encode_basestring_ascii

    from moto.core.model_instances import model_data
    from moto.moto_api._internal.responses import MotoAPIResponse

    encode = json.JSONEncoder().encode  # json.dumps with its defaults
    # JSON holds none of these (json.dumps raises TypeError): most of what dir() lists are methods.
    functions = (types.MethodType, types.FunctionType, types.BuiltinFunctionType, types.MethodWrapperType)

    def value(v) -> str:
        t = type(v)  # json.dumps' own answers for the commonest leaves, without building an encoder
        if t is str:
            return encode_basestring_ascii(v)
        if v is None:
            return "null"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if t is int:
            return int.__repr__(v)
        return encode(v)

    def fields(instance) -> str:
        out = []
        for attr in dir(instance):
            if attr.startswith("_"):
                continue
            try:  # what moto's dump leaves out: values that cannot be read or are not JSON
                v = getattr(instance, attr)
                if not isinstance(v, functions):
                    out.append(f"{encode_basestring_ascii(attr)}: {value(v)}")
            except (TypeError, AttributeError, ValueError):
                pass
        return "{" + ", ".join(out) + "}"

    def dump(self, request, full_url, headers):
        services = []
        for service in sorted(model_data):
            models = model_data[service]
            kinds = [f"{encode(name)}: [{', '.join(fields(i) for i in models[name].instances_tracked)}]"
                     for name in sorted(models)]
            services.append(f"{encode(service)}: {{{', '.join(kinds)}}}")
        return 200, {"Content-Type": "application/javascript"}, "{" + ", ".join(services) + "}"

    MotoAPIResponse.model_data = dump
