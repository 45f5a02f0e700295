"""Our own declaration of the parts of Paddle's ``ProgramDesc`` wire format that we read.

Written from the format (field numbers and types of the saved ``*.pdmodel`` file), not copied
from Paddle's ``framework.proto``. Every field is declared ``optional`` so that damaged files are
reported by our own checks, with a message, rather than by protobuf; fields we do not declare are
kept by protobuf as unknown fields and written back unchanged, so a rewrite never loses data.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "int32": _F.TYPE_INT32,
    "int64": _F.TYPE_INT64,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}
_PACKAGE = "paddle_op_migrator.upgrade"

# Attribute kinds (the ``type`` of an op attribute) and the field that holds each value.
ATTR_FIELD = {
    0: "i",  # INT
    1: "f",  # FLOAT
    2: "s",  # STRING
    3: "ints",
    4: "floats",
    5: "strings",
    6: "b",  # BOOLEAN
    7: "bools",
    8: "block_idx",
    9: "l",  # LONG
    10: "blocks_idx",
    11: "longs",
    12: "float64s",
    13: "var_name",
    14: "vars_name",
    15: "float64",
    16: "scalar",
    17: "scalars",
}
ATTR_KIND = {
    "INT": 0, "FLOAT": 1, "STRING": 2, "INTS": 3, "FLOATS": 4, "STRINGS": 5, "BOOLEAN": 6,
    "BOOLEANS": 7, "BLOCK": 8, "LONG": 9, "BLOCKS": 10, "LONGS": 11, "FLOAT64S": 12, "VAR": 13,
    "VARS": 14, "FLOAT64": 15, "SCALAR": 16, "SCALARS": 17,
}  # fmt: skip

# Element types of a tensor (VarType.Type values).
DTYPES = {
    0: "bool", 1: "int16", 2: "int32", 3: "int64", 4: "float16", 5: "float32", 6: "float64",
    20: "uint8", 21: "int8", 22: "bfloat16", 23: "complex64", 24: "complex128",
}  # fmt: skip
# Variable kinds (also VarType.Type values).
LOD_TENSOR, SELECTED_ROWS, FEED_MINIBATCH, FETCH_LIST, LOD_TENSOR_ARRAY = 7, 8, 9, 10, 13
VAR_KINDS = {
    7: "dense tensor", 8: "selected rows", 9: "feed list", 10: "fetch list", 11: "step scopes",
    12: "LoD rank table", 13: "tensor array", 14: "place list", 15: "reader", 17: "raw",
    18: "tuple", 25: "string", 26: "strings", 27: "vocab", 28: "feed list", 29: "pstring",
    30: "sparse COO", 31: "sparse CSR",
}  # fmt: skip


def _field(name: str, number: int, kind: str, repeated: bool = False) -> _F:
    f = _F(name=name, number=number)
    f.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    if kind in _SCALARS:
        f.type = _SCALARS[kind]
    else:  # a message of this file
        f.type = _F.TYPE_MESSAGE
        f.type_name = f".{_PACKAGE}.{kind}"
    return f


def _message(name: str, fields: list[tuple]) -> descriptor_pb2.DescriptorProto:
    m = descriptor_pb2.DescriptorProto(name=name)
    for spec in fields:
        m.field.append(_field(*spec))
    return m


def _file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(
        name="paddle_op_migrator_program.proto", package=_PACKAGE, syntax="proto2"
    )
    # Enums are read as plain int32: a value we do not know must not be dropped by the parser.
    messages = [
        ("Scalar", [("type", 1, "int32"), ("b", 2, "bool"), ("i", 3, "int64"), ("r", 4, "double")]),
        ("Attr", [
            ("name", 1, "string"), ("type", 2, "int32"), ("i", 3, "int32"), ("f", 4, "float"),
            ("s", 5, "bytes"), ("ints", 6, "int32", True), ("floats", 7, "float", True),
            ("strings", 8, "bytes", True), ("b", 10, "bool"), ("bools", 11, "bool", True),
            ("block_idx", 12, "int32"), ("l", 13, "int64"), ("blocks_idx", 14, "int32", True),
            ("longs", 15, "int64", True), ("float64s", 16, "double", True),
            ("var_name", 17, "string"), ("vars_name", 18, "string", True),
            ("float64", 19, "double"), ("scalar", 20, "Scalar"), ("scalars", 21, "Scalar", True),
        ]),
        ("Slot", [("parameter", 1, "string"), ("arguments", 2, "string", True)]),
        ("OpDesc", [
            ("inputs", 1, "Slot", True), ("outputs", 2, "Slot", True), ("type", 3, "string"),
            ("attrs", 4, "Attr", True), ("is_target", 5, "bool"),
        ]),
        ("TensorDesc", [("data_type", 1, "int32"), ("dims", 2, "int64", True)]),
        ("LoDTensorDesc", [("tensor", 1, "TensorDesc"), ("lod_level", 2, "int32")]),
        ("VarType", [
            ("type", 1, "int32"), ("selected_rows", 2, "TensorDesc"),
            ("lod_tensor", 3, "LoDTensorDesc"), ("tensor_array", 4, "LoDTensorDesc"),
        ]),
        ("VarDesc", [
            ("name", 1, "string"), ("type", 2, "VarType"), ("persistable", 3, "bool"),
            ("need_check_feed", 4, "bool"), ("is_parameter", 5, "bool"),
            ("stop_gradient", 6, "bool"),
        ]),
        ("BlockDesc", [
            ("idx", 1, "int32"), ("parent_idx", 2, "int32"), ("vars", 3, "VarDesc", True),
            ("ops", 4, "OpDesc", True), ("forward_block_idx", 5, "int32"),
        ]),
        ("Version", [("version", 1, "int64")]),
        ("OpVersion", [("version", 1, "int32")]),
        ("OpVersionPair", [("op_name", 1, "string"), ("op_version", 2, "OpVersion")]),
        ("OpVersionMap", [("pair", 1, "OpVersionPair", True)]),
        ("ProgramDesc", [
            ("blocks", 1, "BlockDesc", True), ("version", 4, "Version"),
            ("op_version_map", 5, "OpVersionMap"),
        ]),
    ]  # fmt: skip
    for name, fields in messages:
        fd.message_type.append(_message(name, fields))
    return fd


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _cls(name: str):
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


ProgramDesc = _cls("ProgramDesc")
OpDesc = _cls("OpDesc")
VarDesc = _cls("VarDesc")
TensorDesc = _cls("TensorDesc")
