"""GGUF files of golden vectors and vendor results, written and read with gguf-py, defensively.

Writing is deterministic: metadata keys in sorted order, tensors in sorted name order, no
timestamps, so the same arrays and metadata give the same bytes on any machine.

Reading treats the file as untrusted. gguf-py's GGUFReader memory-maps the file and trusts
its counts, so before handing the file to it the header is checked by hand (magic, version,
tensor and key counts within small limits, file size within a limit); the reader's own
exceptions become one-line ValueErrors; afterwards every tensor's declared element count,
byte size and offset are checked against the file before its data is copied out. uint8
arrays (packed weights) have no GGUF type: they are stored as I8 and their numpy dtype is
recorded in the `qoracle.dtypes` metadata (a JSON object), which the reader applies.
"""
from __future__ import annotations

import json
import os
import stat
import struct
import warnings

import numpy as np

__all__ = ["MAX_FILE_BYTES", "MAX_TENSORS", "write_gguf", "read_gguf", "one_line"]

MAX_FILE_BYTES = 1 << 31  # 2 GiB: far above any golden-vector case, far below an absurd claim
MAX_TENSORS = 4096
MAX_KV = 4096
MAX_ELEMENTS = 1 << 28
ARCH = "qoracle"
_DTYPES = {"float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bfloat16"}
_AS_STORED = {"uint8": np.int8, "bfloat16": np.int16}  # dtypes GGUF lacks, stored as same-size integers
_PLAIN_TYPES = {"F16", "F32", "F64", "I8", "I16", "I32", "I64"}


def one_line(e: BaseException, limit: int = 240) -> str:
    """An exception as one short line (the reader's messages may hold newlines or huge reprs)."""
    s = f"{type(e).__name__}: {e}".replace("\n", " ").replace("\r", " ")
    return s if len(s) <= limit else s[:limit - 3] + "..."


def write_gguf(path: str, arrays: dict[str, np.ndarray], meta: dict[str, object]) -> None:
    """One GGUF file: `arrays` as tensors, `meta` as qoracle.* keys (str, int or list of int)."""
    import gguf

    dtypes = {}
    w = gguf.GGUFWriter(path, ARCH)
    for key in sorted(meta):
        v = meta[key]
        if isinstance(v, bool) or not isinstance(v, (str, int, list)):
            raise ValueError(f"metadata {key!r}: only str, int and lists of int are written, got {type(v).__name__}")
        if isinstance(v, str):
            w.add_string(key, v)
        elif isinstance(v, int):
            w.add_int64(key, v)
        else:
            w.add_array(key, [int(i) for i in v])
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        if a.dtype.name not in _DTYPES:
            raise ValueError(f"tensor {name!r}: dtype {a.dtype} cannot be stored")
        dtypes[name] = a.dtype.name
    w.add_string("qoracle.dtypes", json.dumps(dtypes, sort_keys=True))
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        stored = a.view(_AS_STORED[a.dtype.name]) if a.dtype.name in _AS_STORED else a
        w.add_tensor(name, stored)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _np_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _check_header(path: str, what: str) -> int:
    """Size, magic, version and counts, read by hand before any memory map; returns the file size."""
    try:
        st = os.lstat(path)
    except OSError as e:
        raise ValueError(f"{what}: cannot open ({one_line(e)})") from None
    if stat.S_ISLNK(st.st_mode):
        raise ValueError(f"{what}: is a symbolic link; refusing to follow it")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what}: not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise ValueError(f"{what}: {st.st_size} bytes is over the {MAX_FILE_BYTES}-byte limit")
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:4] != b"GGUF":
        raise ValueError(f"{what}: not a GGUF file (bad magic or shorter than a header)")
    version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:24])
    if version not in (2, 3):
        raise ValueError(f"{what}: GGUF version {version} (only little-endian versions 2 and 3 are read)")
    if n_tensors > MAX_TENSORS or n_kv > MAX_KV:
        raise ValueError(f"{what}: header declares {n_tensors} tensors and {n_kv} keys (limits {MAX_TENSORS}, {MAX_KV})")
    return st.st_size


def _meta_value(field) -> object:
    v = field.contents()
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", "replace")
    return v


def read_gguf(path: str, what: str | None = None) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """(metadata, {tensor name: numpy array copy}) from an untrusted GGUF file, or a one-line ValueError."""
    import gguf

    what = what or os.path.basename(path)
    size = _check_header(path, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader = gguf.GGUFReader(path, "r")
            meta = {k: _meta_value(f) for k, f in reader.fields.items() if not k.startswith("GGUF.")}
            infos = list(reader.tensors)
    except Exception as e:  # gguf-py raises many kinds on malformed input; all mean "unreadable"
        raise ValueError(f"{what}: malformed GGUF ({one_line(e)})") from None
    dtypes = meta.get("qoracle.dtypes", "{}")
    try:
        dtypes = json.loads(dtypes) if isinstance(dtypes, str) else None
    except ValueError:
        dtypes = None
    if not isinstance(dtypes, dict):
        raise ValueError(f"{what}: metadata qoracle.dtypes is not a JSON object")
    tensors: dict[str, np.ndarray] = {}
    for t in infos:
        name = str(t.name)
        if getattr(t.tensor_type, "name", "") not in _PLAIN_TYPES:
            raise ValueError(f"{what}: tensor {name!r} has GGML type {t.tensor_type!r}; only plain F16/F32/F64/I8-I64 are read")
        if name in tensors:
            raise ValueError(f"{what}: tensor {name!r} appears twice")
        shape = tuple(int(d) for d in reversed(list(t.shape)))
        n = int(np.prod(shape, dtype=object)) if shape else 1
        if any(d < 0 for d in shape) or n > MAX_ELEMENTS or n != int(t.n_elements):
            raise ValueError(f"{what}: tensor {name!r} declares shape {shape} ({t.n_elements} elements): absurd or inconsistent")
        data = np.asarray(t.data)
        if int(t.data_offset) + int(t.n_bytes) > size or data.size != n or data.nbytes != int(t.n_bytes):
            raise ValueError(f"{what}: tensor {name!r} ({n} elements) extends past the end of the file (truncated?)")
        want = dtypes.get(name, data.dtype.name)
        if want not in _DTYPES:
            raise ValueError(f"{what}: tensor {name!r} has unsupported dtype {want!r}")
        if _np_dtype(want).itemsize != data.dtype.itemsize or data.dtype.kind not in "fiu":
            raise ValueError(f"{what}: tensor {name!r} is stored as {data.dtype}, metadata says {want}")
        tensors[name] = np.array(data.reshape(shape), copy=True).view(_np_dtype(want))
    del reader
    return meta, tensors
