"""Reading dataset files: a JSON array, JSON Lines or Parquet becomes one Arrow table; errors name the file and place.

Two steps. `ingest` streams an upload into a temporary file beside its final place while hashing it (the whole file
is never held twice in memory), checks UTF-8 (a BOM is dropped; another encoding is detected with charset-normalizer
and converted only when the caller agrees) and the kind of file against its extension. `load_table` reads a stored
file: JSON Lines through pyarrow's multi-threaded reader when every line looks like one object and it gives one row
per line, else a line-by-line reader that pinpoints syntax errors, non-objects and values of the wrong type; JSON
arrays element by element (never the whole file as Python objects); Parquet through pyarrow (dictionary-encoded
columns decoded).

A value of a type its column's role does not accept (a number where the prompt should be a string, a malformed chat
message) becomes null in the table and is recorded in `LoadedTable.issues`, so validation can flag that row instead
of refusing the whole file.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from platform_core.errors import InvalidInput

FORMATS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
EXTENSIONS = {"json": ".json", "jsonl": ".jsonl", "parquet": ".parquet"}
CHUNK_BYTES = 1 << 20
BATCH_ROWS = 50_000
UTF8_BOM = b"\xef\xbb\xbf"
_OTHER_BOMS = {
    b"\xff\xfe\x00\x00": "utf_32_le",
    b"\x00\x00\xfe\xff": "utf_32_be",
    b"\xff\xfe": "utf_16_le",
    b"\xfe\xff": "utf_16_be",
}
_MAGIC = {b"PAR1": "a Parquet file", b"\x1f\x8b": "a gzip archive", b"PK\x03\x04": "a zip archive"}


def format_for(filename: str) -> str:
    """Return the dataset format (json, jsonl, parquet) for a file name, or raise InvalidInput naming it."""
    suffix = Path(filename).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidInput(
            f"{Path(filename).name}: unsupported file type {suffix or '(no extension)'!r}; "
            "use .json (an array of records), .jsonl (one record per line) or .parquet"
        )
    return FORMATS[suffix]


def json_kind(value: Any) -> str:
    """Return the JSON name of a Python value's type (string, number, boolean, array, object, null)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


# -- ingest: stream an upload to a temporary file ------------------------------------------------------------------
@dataclass
class Ingested:
    """An upload copied to a temporary file in the datasets folder, not yet validated or named."""

    path: Path
    content_hash: str
    size: int
    encoding: str  # "utf-8", "utf-8 with BOM", "binary" (Parquet) or the encoding it was converted from


class _NotUtf8(Exception):
    def __init__(self, offset: int, line: int, byte: int | None, reason: str = "", utf8_before: bool = False):
        self.offset, self.line, self.byte, self.reason = offset, line, byte, reason
        self.utf8_before = utf8_before  # multi-byte UTF-8 decoded fine before the error: a damaged UTF-8 file


def encoding_label(name: str) -> str:
    """A codec name as people write it (gb18030 -> GB18030, utf_16 -> UTF-16)."""
    return name.replace("_", "-").upper()


def _open_source(source: Path | BinaryIO) -> tuple[BinaryIO, bool]:
    if isinstance(source, (str, os.PathLike)):
        return open(source, "rb"), True
    if hasattr(source, "seek"):
        source.seek(0)
    return source, False


def _copy_bytes(reader: BinaryIO, out: BinaryIO, digest) -> int:
    size = 0
    while chunk := reader.read(CHUNK_BYTES):
        digest.update(chunk)
        out.write(chunk)
        size += len(chunk)
    return size


def _copy_utf8(reader: BinaryIO, out: BinaryIO, digest) -> tuple[int, bool]:
    """Copy checking UTF-8 as it streams; drop a UTF-8 BOM. Return (bytes written, had BOM)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = lines = size = 0
    first, bom, multibyte = True, False, False
    while chunk := reader.read(CHUNK_BYTES):
        if first:
            first = False
            if chunk.startswith(UTF8_BOM):
                chunk, offset, bom = chunk[3:], 3, True
            else:
                for mark, name in _OTHER_BOMS.items():
                    if chunk.startswith(mark):
                        raise _NotUtf8(
                            0, 1, chunk[0], f"it starts with a {name.upper().replace('_', '-')} byte order mark"
                        )
            if b"\x00" in chunk[:4096]:
                raise _NotUtf8(chunk.index(b"\x00") + offset, 1, 0, "it contains NUL bytes (UTF-16 or binary data)")
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line = lines + chunk.count(b"\n", 0, exc.start) + 1
            before = multibyte or not chunk[: exc.start].isascii()
            raise _NotUtf8(offset + exc.start, line, chunk[exc.start], utf8_before=before) from exc
        multibyte = multibyte or not chunk.isascii()
        lines += chunk.count(b"\n")
        offset += len(chunk)
        digest.update(chunk)
        out.write(chunk)
        size += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise _NotUtf8(
            offset,
            lines + 1,
            None,
            "the file ends in the middle of a multi-byte character; it looks truncated",
            utf8_before=True,
        ) from exc
    return size, bom


def _copy_converted(reader: BinaryIO, out: BinaryIO, digest, encoding: str, name: str) -> int:
    try:
        decoder = codecs.getincrementaldecoder(encoding)("strict")
    except LookupError as exc:
        raise InvalidInput(f"{name}: unknown encoding {encoding!r}") from exc
    offset = size = 0
    first = True
    while True:
        chunk = reader.read(CHUNK_BYTES)
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"{name}: cannot be read as {encoding} at byte {offset + exc.start}: {exc.reason}; nothing was stored"
            ) from exc
        if first and text:
            text, first = text.removeprefix("\ufeff"), False
        data = text.encode("utf-8")
        digest.update(data)
        out.write(data)
        size += len(data)
        offset += len(chunk)
        if not chunk:
            return size


def detect_encoding(sample: bytes) -> str | None:
    """Return the most likely encoding of a text sample (charset-normalizer), or None if it does not look like text."""
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    return best.encoding if best is not None else None


def _sniff(head: bytes, fmt: str, name: str) -> None:
    """Refuse a file whose first bytes say it is not what its extension claims."""
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            if fmt == "parquet" and magic == b"PAR1":
                return
            hint = " rename it to .parquet" if magic == b"PAR1" else " unpack it first"
            raise InvalidInput(f"{name}: this is {what}, not {fmt.upper()} text;{hint}. Nothing was stored.")
    if fmt == "parquet":
        text = head.lstrip(UTF8_BOM).lstrip()
        what = "JSON text" if text[:1] in (b"[", b"{") else "not a Parquet file"
        raise InvalidInput(
            f"{name}: {what} (a Parquet file starts with the bytes PAR1)"
            + ("; use the .json or .jsonl extension" if what == "JSON text" else "")
            + ". Nothing was stored."
        )


STALE_INCOMING_S = 3600


def remove_stale_incoming(directory: Path, older_than_s: float = STALE_INCOMING_S) -> list[Path]:
    """Delete `.incoming-*` files left by killed uploads (untouched for `older_than_s`); return what was removed.

    A live upload writes its file continuously, so only files idle for an hour are taken as leftovers.
    """
    removed = []
    cutoff = time.time() - older_than_s
    for path in directory.glob(".incoming-*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except FileNotFoundError:  # another upload removed it first
            continue
    return removed


def ingest(
    source: Path | BinaryIO, directory: Path, name: str, fmt: str, convert_encoding: bool | str = False
) -> Ingested:
    """Copy `source` into a temporary file in `directory`, hashing and checking it; the caller renames or deletes it.

    `convert_encoding`: False refuses text that is not UTF-8 (naming the detected encoding); True converts from the
    detected encoding; a string converts from that encoding.
    """
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_incoming(directory)
    tmp = directory / f".incoming-{uuid.uuid4().hex}{EXTENSIONS[fmt]}"
    reader, owned = _open_source(source)
    try:
        head = reader.read(8)
        reader.seek(0)
        if not head or (fmt != "parquet" and not head.lstrip(UTF8_BOM).strip() and _is_blank(reader)):
            raise InvalidInput(f"{name}: the file is empty. Nothing was stored.")
        _sniff(head, fmt, name)
        digest = hashlib.sha256()
        with open(tmp, "wb") as out:
            if fmt == "parquet":
                size, encoding = _copy_bytes(reader, out, digest), "binary"
            elif isinstance(convert_encoding, str) and convert_encoding.lower() not in ("utf-8", "utf8"):
                size = _copy_converted(reader, out, digest, convert_encoding, name)
                encoding = encoding_label(convert_encoding)
            else:
                try:
                    size, bom = _copy_utf8(reader, out, digest)
                    encoding = "utf-8 with BOM" if bom else "utf-8"
                except _NotUtf8 as bad:
                    reader.seek(0)
                    detected = None if bad.utf8_before else detect_encoding(reader.read(4 * CHUNK_BYTES))
                    if not convert_encoding or not detected or detected.replace("_", "-") == "utf-8":
                        raise InvalidInput(_not_utf8_message(name, bad, detected)) from None
                    reader.seek(0)
                    out.seek(0)
                    out.truncate()
                    digest = hashlib.sha256()
                    size = _copy_converted(reader, out, digest, detected, name)
                    encoding = encoding_label(detected)
        if fmt != "parquet" and size == 0:
            raise InvalidInput(f"{name}: the file is empty. Nothing was stored.")
        return Ingested(tmp, digest.hexdigest(), size, encoding)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if owned:
            reader.close()


def _is_blank(reader: BinaryIO) -> bool:
    """True when the rest of the stream is only whitespace (and a BOM); rewinds the stream."""
    blank = True
    first = True
    while chunk := reader.read(CHUNK_BYTES):
        if first:
            chunk, first = chunk.removeprefix(UTF8_BOM), False
        if chunk.strip():
            blank = False
            break
    reader.seek(0)
    return blank


def _not_utf8_message(name: str, bad: _NotUtf8, detected: str | None) -> str:
    where = f"line {bad.line} (byte {bad.offset}" + (f", 0x{bad.byte:02x}" if bad.byte is not None else "") + ")"
    reason = f"; {bad.reason}" if bad.reason else ""
    if detected and detected.replace("_", "-") != "utf-8":
        label = encoding_label(detected)
        return (
            f"{name}: not UTF-8 (first invalid byte at {where}{reason}); it looks like {label} text. Save it as "
            f"UTF-8, or upload it again agreeing to convert it from {label} (page: 'Convert the encoding'; CLI: "
            "--convert-encoding, or --convert-encoding NAME for another encoding). Nothing was stored."
        )
    if bad.utf8_before and bad.reason:
        return f"{name}: invalid UTF-8 at {where}{reason}. Nothing was stored."
    if bad.utf8_before:
        return f"{name}: invalid UTF-8 at {where}{reason}; the text before it is UTF-8, so the file looks damaged. Nothing was stored."
    return (
        f"{name}: invalid UTF-8 at {where}{reason}, and it does not look like text in another encoding "
        "(binary or damaged file?). Nothing was stored."
    )


# -- load: one Arrow table -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnRule:
    """What a column that plays a role accepts: JSON kinds, whether scalars become strings, whether it is a chat."""

    kinds: frozenset[str]
    coerce_text: bool = False
    chat: bool = False

    def expected(self) -> str:
        """What the column should hold, for a message ('a string', 'a list of chat messages', ...)."""
        if self.coerce_text:
            return "a string or a number"
        names = {"string": "a string", "array": "a list of chat messages" if self.chat else "a list"}
        return " or ".join(names.get(kind, f"a JSON {kind}") for kind in sorted(self.kinds, reverse=True))


@dataclass
class LoadedTable:
    """A dataset as an Arrow table, with the values that did not fit their column's role and where rows came from."""

    table: pa.Table
    format: str
    name: str
    path: Path
    issues: dict[str, dict[int, str]] = field(default_factory=dict)
    lines: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def line_numbers(self) -> np.ndarray | None:
        """Line (1-based) where each row starts, for JSON Lines and JSON arrays."""
        if self.lines is None and self.format == "jsonl":
            self.lines = _jsonl_lines(self.path)
        return self.lines

    def place(self, row: int) -> str:
        """Where a row is, for a message: 'line 12' (JSON Lines), 'row 11 (line 40)' (JSON), 'row 11' (Parquet)."""
        lines = self.line_numbers()
        line = int(lines[row]) if lines is not None and row < len(lines) else None
        if self.format == "jsonl" and line is not None:
            return f"line {line}"
        return f"row {row}" + (f" (line {line})" if line is not None else "")


def _jsonl_lines(path: Path) -> np.ndarray:
    numbers = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if raw.strip():
                numbers.append(number)
    return np.asarray(numbers, dtype=np.int64)


def load_table(
    path: Path, fmt: str, name: str | None = None, rules: dict[str, ColumnRule] | None = None
) -> LoadedTable:
    """Read a stored dataset file into a LoadedTable; raise InvalidInput naming the file and place when it is broken."""
    path = Path(path)
    name = name or path.name
    rules = rules or {}
    if fmt == "parquet":
        loaded = _load_parquet(path, name)
    elif fmt == "jsonl":
        loaded = _load_jsonl(path, name, rules)
    elif fmt == "json":
        loaded = _load_json_array(path, name, rules)
    else:
        raise InvalidInput(f"{name}: unknown format {fmt!r}")
    if loaded.rows == 0:
        raise InvalidInput(f"{name}: the file has no rows (no records). Nothing was stored.")
    if loaded.table.num_columns == 0:
        raise InvalidInput(f"{name}: the records have no fields (every record is {{}}). Nothing was stored.")
    return loaded


def _load_parquet(path: Path, name: str) -> LoadedTable:
    with open(path, "rb") as handle:
        head = handle.read(4)
    _sniff(head, "parquet", name)
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        text = str(exc).replace(str(path), name)
        if "magic bytes not found in footer" in text or "footer" in text.lower():
            text = "its end (the Parquet footer) is missing or damaged; the file looks truncated"
        raise InvalidInput(f"{name}: not a readable Parquet file: {text}. Nothing was stored.") from exc
    return LoadedTable(_decode_dictionaries(table), "parquet", name, path)


def _plain_type(dtype: pa.DataType) -> pa.DataType:
    """The type with every dictionary (pandas category) replaced by its value type, nested ones included."""
    if pa.types.is_dictionary(dtype):
        return _plain_type(dtype.value_type)
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        value = dtype.value_field.with_type(_plain_type(dtype.value_type))
        return pa.list_(value) if pa.types.is_list(dtype) else pa.large_list(value)
    if pa.types.is_fixed_size_list(dtype):
        return pa.list_(dtype.value_field.with_type(_plain_type(dtype.value_type)), dtype.list_size)
    if pa.types.is_struct(dtype):
        return pa.struct([f.with_type(_plain_type(f.type)) for f in dtype])
    if pa.types.is_map(dtype):
        return pa.map_(_plain_type(dtype.key_type), _plain_type(dtype.item_type))
    return dtype


def _decode_dictionaries(table: pa.Table) -> pa.Table:
    """Cast dictionary-encoded columns (pandas categories) to their values, so a category of strings is strings."""
    for index, fld in enumerate(table.schema):
        plain = _plain_type(fld.type)
        if plain != fld.type:
            table = table.set_column(index, fld.with_type(plain), table.column(index).cast(plain))
    return table


def _scan_jsonl(path: Path) -> tuple[int, bool]:
    """Count the non-blank lines; say whether each of them looks like one object (starts with '{', ends with '}').

    pyarrow's reader accepts what JSON Lines does not (two objects on one line become two rows, a `null` line an
    all-null row, so rows drift from lines) and crashes the process on a `null` that starts one of its blocks. Only
    a file whose lines all look like single objects goes to it, and only a table with one row per line is kept.
    """
    count, plain = 0, True
    with open(path, "rb") as handle:
        for raw in handle:
            if raw[:1] == b"{" and raw[-2:] == b"}\n":
                count += 1
                continue
            text = raw.strip()
            if text:
                count += 1
                plain = plain and text[:1] == b"{" and text[-1:] == b"}"
    return count, plain


def _load_jsonl(path: Path, name: str, rules: dict[str, ColumnRule]) -> LoadedTable:
    records, plain = _scan_jsonl(path)
    if plain:
        try:
            table = _read_jsonl_fast(path)
            if table.num_rows == records and _fast_table_fits(table, rules):
                return LoadedTable(table, "jsonl", name, path)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
    builder = _TableBuilder(rules, name)
    lines = []
    for line, record in _iter_jsonl(path, name):
        lines.append(line)
        builder.add(record)
    return LoadedTable(builder.finish(), "jsonl", name, path, builder.issues, np.asarray(lines, dtype=np.int64))


def _read_jsonl_fast(path: Path) -> pa.Table:
    """pyarrow's streaming reader (one block in memory at a time); its whole-file reader when later blocks add fields."""
    options = pa_json.ReadOptions(block_size=16 << 20)
    try:
        reader = pa_json.open_json(path, read_options=options)
        return pa.Table.from_batches(list(reader), schema=reader.schema)
    except pa.ArrowInvalid:
        return pa_json.read_json(path, read_options=options)


def _fast_table_fits(table: pa.Table, rules: dict[str, ColumnRule]) -> bool:
    """The fast reader's table is usable unless a role column came out with a type only the slow path sorts out.

    (pyarrow may also read a date-like string column as timestamps; such a role column goes the slow path too.)
    """
    for col, rule in rules.items():
        if col not in table.column_names:
            continue
        kind = arrow_kind(table.schema.field(col).type)
        if kind != "null" and kind not in rule.kinds:
            return False
        if rule.chat and kind == "array" and not chat_type_ok(table.schema.field(col).type):
            return False
    return True


def chat_type_ok(dtype: pa.DataType) -> bool:
    """True for list<struct<role: string, content: string, ...>> (or with an all-null role/content)."""
    value = dtype.value_type
    if not pa.types.is_struct(value):
        return False
    names = {value.field(i).name: value.field(i).type for i in range(value.num_fields)}
    return all(
        key in names and (pa.types.is_string(names[key]) or pa.types.is_null(names[key])) for key in ("role", "content")
    )


def arrow_kind(dtype: pa.DataType) -> str:
    """Return the JSON kind an Arrow type holds (string, number, boolean, array, object, null, or the type)."""
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "string"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "number"
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype):
        return "array"
    if pa.types.is_struct(dtype) or pa.types.is_map(dtype):
        return "object"
    if pa.types.is_null(dtype):
        return "null"
    return str(dtype)


def _iter_jsonl(path: Path, name: str) -> Iterator[tuple[int, dict]]:
    with open(path, "rb") as handle:
        line = 0
        for line, raw in enumerate(handle, 1):
            text = raw.strip()
            if not text:
                continue
            try:
                record = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise InvalidInput(_jsonl_syntax_message(name, line, text, exc, raw.endswith(b"\n"))) from exc
            if not isinstance(record, dict):
                hint = ""
                if line == 1 and text.startswith(b"["):
                    hint = " The file looks like a JSON array: give it the .json extension."
                raise InvalidInput(
                    f"{name}: line {line}: a JSON {json_kind(record)} where a record (a JSON object) was expected; "
                    f"JSON Lines hold one object per line.{hint} Nothing was stored."
                )
            yield line, record


def _jsonl_syntax_message(name: str, line: int, text: bytes, exc: orjson.JSONDecodeError, has_newline: bool) -> str:
    column = exc.colno
    if line == 1 and text[:1] == b"[":
        return (
            f"{name}: line 1 is not a complete JSON object; the file looks like a JSON array (or pretty-printed "
            "JSON): give it the .json extension. Nothing was stored."
        )
    cut = "end of data" in exc.msg or "EOF" in exc.msg or "unterminated" in exc.msg.lower()
    if cut and not has_newline:
        return (
            f"{name}: line {line}, column {column}: the record is cut off ({exc.msg}); the file looks truncated. "
            "Nothing was stored."
        )
    return f"{name}: line {line}, column {column}: invalid JSON ({exc.msg}). Nothing was stored."


class _ArrayReader:
    """Decode a JSON array element by element from a UTF-8 file, keeping only a window of its text in memory."""

    def __init__(self, path: Path, name: str):
        self.handle = open(path, encoding="utf-8-sig", newline="")
        self.name = name
        self.decoder = json.JSONDecoder(parse_constant=self._constant)
        self.buf = ""
        self.pos = 0
        self.line_base = 1  # line number at self.buf[0]
        self.eof = False

    @staticmethod
    def _constant(name: str):
        raise ValueError(f"{name} is not valid JSON")

    def _refill(self, grow: bool = False) -> bool:
        if self.eof:
            return False
        self.line_base += self.buf.count("\n", 0, self.pos)
        chunk = self.handle.read(CHUNK_BYTES * (8 if grow else 4))
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        if not chunk:
            self.eof = True
        return bool(chunk)

    def _skip_space(self) -> str:
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._refill():
                return ""

    def line(self) -> int:
        return self.line_base + self.buf.count("\n", 0, self.pos)

    def _where(self, pos: int) -> str:
        line = self.line_base + self.buf.count("\n", 0, pos)
        column = pos - self.buf.rfind("\n", 0, pos)
        return f"line {line}, column {column}"

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        try:
            first = self._skip_space()
            if first != "[":
                if first == "{":
                    raise InvalidInput(
                        f"{self.name}: line {self.line()}: the file holds a JSON object, not an array of records. A "
                        ".json dataset is [ {...}, {...} ]; one object per line belongs in a .jsonl file. Nothing was "
                        "stored."
                    )
                raise InvalidInput(
                    f"{self.name}: {self._where(self.pos)}: expected '[' (a .json dataset is an array of records). "
                    "Nothing was stored."
                )
            self.pos += 1
            if self._skip_space() == "]":
                self.pos += 1
                self._expect_end()
                return
            while True:
                if self._skip_space() == "":
                    raise InvalidInput(
                        f"{self.name}: line {self.line()}: the JSON array is cut off at the end; the file looks "
                        "truncated. Nothing was stored."
                    )
                line = self.line()
                value = self._decode_one()
                yield line, value
                sep = self._skip_space()
                if sep == ",":
                    self.pos += 1
                    continue
                if sep == "]":
                    self.pos += 1
                    self._expect_end()
                    return
                if sep == "":
                    raise InvalidInput(
                        f"{self.name}: the JSON array is cut off after line {line} (no closing ']'); the file looks "
                        "truncated. Nothing was stored."
                    )
                raise InvalidInput(
                    f"{self.name}: {self._where(self.pos)}: expected ',' or ']' after a record. Nothing was stored."
                )
        finally:
            self.handle.close()

    def _decode_one(self) -> Any:
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
                if end == len(self.buf) and not self.eof and not isinstance(value, (dict, list, str)):
                    raise json.JSONDecodeError("number may continue", self.buf, self.pos)
                self.pos = end
                return value
            except json.JSONDecodeError as exc:
                far = len(self.buf) - exc.pos > 4 * CHUNK_BYTES and not exc.msg.startswith("Unterminated")
                if self.eof or far or not self._refill(grow=True):
                    self._raise_syntax(exc)
            except ValueError as exc:
                raise InvalidInput(f"{self.name}: {self._where(self.pos)}: {exc}. Nothing was stored.") from exc

    def _raise_syntax(self, exc: json.JSONDecodeError) -> None:
        cut = exc.pos >= len(self.buf.rstrip()) or exc.msg.startswith("Unterminated") and self.eof
        where = self._where(exc.pos)
        if cut or (self.eof and exc.pos >= len(self.buf.rstrip()) - 1):
            raise InvalidInput(
                f"{self.name}: {where}: the JSON is cut off ({exc.msg}); the file looks truncated. Nothing was stored."
            )
        raise InvalidInput(f"{self.name}: {where}: invalid JSON ({exc.msg}). Nothing was stored.")

    def _expect_end(self) -> None:
        if self._skip_space() != "":
            raise InvalidInput(
                f"{self.name}: {self._where(self.pos)}: unexpected text after the closing ']' of the array. Nothing "
                "was stored."
            )


def _load_json_array(path: Path, name: str, rules: dict[str, ColumnRule]) -> LoadedTable:
    builder = _TableBuilder(rules, name)
    lines = []
    for row, (line, record) in enumerate(_ArrayReader(path, name)):
        if not isinstance(record, dict):
            raise InvalidInput(
                f"{name}: row {row} (line {line}): a JSON {json_kind(record)} where a record (a JSON object) was "
                "expected. Nothing was stored."
            )
        lines.append(line)
        builder.add(record)
    return LoadedTable(builder.finish(), "json", name, path, builder.issues, np.asarray(lines, dtype=np.int64))


def _check_chat(value: list) -> str | None:
    """Return what is wrong with a chat message list's structure, or None."""
    for number, message in enumerate(value):
        if not isinstance(message, dict):
            return f"message {number} is a JSON {json_kind(message)}, not an object with role and content"
        for key in ("role", "content"):
            item = message.get(key)
            if item is not None and not isinstance(item, str):
                return f"message {number}: {key} is a JSON {json_kind(item)}, not a string"
    return None


class _TableBuilder:
    """Turn Python records into Arrow tables batch by batch, setting aside values their column's rule refuses."""

    def __init__(self, rules: dict[str, ColumnRule], name: str):
        self.rules = rules
        self.name = name
        self.issues: dict[str, dict[int, str]] = {}
        self.chosen_kind: dict[str, str] = {}
        self.batch: list[dict] = []
        self.tables: list[pa.Table] = []
        self.rows = 0

    def add(self, record: dict) -> None:
        self.batch.append(record)
        if len(self.batch) >= BATCH_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self.batch:
            return
        names: dict[str, None] = {}
        for record in self.batch:
            names.update(dict.fromkeys(record))
        columns = {}
        for col in names:
            values = [record.get(col) for record in self.batch]
            rule = self.rules.get(col)
            if rule is not None:
                values = self._apply_rule(col, values, rule)
            columns[col] = _to_arrow(values, rule)
        if columns:
            self.tables.append(pa.table(columns))
        else:  # a batch of records without fields still counts its rows
            self.tables.append(pa.table({"_": pa.nulls(len(self.batch))}).drop_columns(["_"]))
        self.rows += len(self.batch)
        self.batch = []

    def _apply_rule(self, col: str, values: list, rule: ColumnRule) -> list:
        out = []
        issues = self.issues.setdefault(col, {})
        for i, value in enumerate(values):
            if value is None:
                out.append(None)
                continue
            kind = json_kind(value)
            if rule.coerce_text and kind in ("string", "number", "boolean"):
                out.append(value if kind == "string" else json.dumps(value))
                continue
            chosen = self.chosen_kind.get(col)
            if kind in rule.kinds and chosen is None:
                self.chosen_kind[col] = chosen = kind
            if kind in rule.kinds and kind == chosen:
                problem = _check_chat(value) if rule.chat and kind == "array" else None
                if problem is None:
                    out.append(value)
                    continue
                issues[self.rows + i] = problem
            elif kind in rule.kinds:
                issues[self.rows + i] = f"a JSON {kind}, but earlier rows hold a JSON {chosen} here (use one form)"
            else:
                issues[self.rows + i] = f"not {rule.expected()} (found a JSON {kind})"
            out.append(None)
        return out

    def finish(self) -> pa.Table:
        self._flush()
        self.issues = {col: rows for col, rows in self.issues.items() if rows}
        if not self.tables:
            return pa.table({})
        if len(self.tables) == 1:
            return self.tables[0]
        try:
            return pa.concat_tables(self.tables, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return pa.concat_tables(_as_json_text_where_types_differ(self.tables), promote_options="permissive")


def _to_arrow(values: list, rule: ColumnRule | None) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        if rule is not None and rule.chat:
            slim = [
                None if v is None else [{"role": m.get("role"), "content": m.get("content")} for m in v] for v in values
            ]
            return pa.array(slim)
        return _json_text(values)


def _json_text(values: list) -> pa.Array:
    return pa.array(
        [
            v if v is None or isinstance(v, str) else orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS).decode()
            for v in values
        ],
        pa.string(),
    )


def _as_json_text_where_types_differ(tables: list[pa.Table]) -> list[pa.Table]:
    """Columns whose type differs between batches (and cannot be promoted) are turned into JSON text everywhere."""
    types: dict[str, set] = {}
    for table in tables:
        for fld in table.schema:
            if not pa.types.is_null(fld.type):
                types.setdefault(fld.name, set()).add(fld.type)
    conflicting = {name for name, seen in types.items() if len(seen) > 1}
    fixed = []
    for table in tables:
        for name in conflicting & set(table.column_names):
            index = table.column_names.index(name)
            table = table.set_column(index, name, _json_text(table.column(name).to_pylist()))
        fixed.append(table)
    return fixed


__all__ = [
    "FORMATS",
    "ColumnRule",
    "Ingested",
    "LoadedTable",
    "arrow_kind",
    "detect_encoding",
    "format_for",
    "ingest",
    "json_kind",
    "load_table",
]
