"""What each dataset type must hold, its field configuration, and row-level validation (vectorised over Arrow).

    sft   prompt + response (strings), or messages: [{role, content}, ...] with at least one assistant turn
    grpo  prompt (a string or a chat list) + the answer field (default `solution`; a string or a number)
    ppo   prompt (a string or a chat list); data_source optional
    dpo   prompt + chosen + rejected (strings); chosen == rejected is an error
    eval  prompt + reference; category optional

A file is refused as a whole when a required field is absent from every row, or when no row is valid. Otherwise
each bad row is flagged: a missing, null or whitespace-only required value (in a chat: any message whose content is
empty or whitespace-only) goes to the `empty` check, anything else (wrong type, malformed chat message, no assistant
turn, identical chosen/rejected) to `format_errors`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from platform_core.datasets.loader import ColumnRule, LoadedTable, arrow_kind, chat_type_ok
from platform_core.errors import InvalidInput

DATASET_TYPES = ("sft", "grpo", "ppo", "dpo", "eval")
CHAT_ROLES = ("system", "user", "assistant", "tool")
DEFAULT_LABEL_FIELDS = ("data_source", "category", "ability")

TEXT = ColumnRule(frozenset({"string"}))
CHAT = ColumnRule(frozenset({"array"}), chat=True)
PROMPT_RL = ColumnRule(frozenset({"string", "array"}), chat=True)
SCALAR = ColumnRule(frozenset({"string", "number", "boolean"}), coerce_text=True)

# Field-configuration keys by type, with defaults. `label_fields` is common to all.
DEFAULT_FIELDS: dict[str, dict[str, Any]] = {
    "sft": {"format": None, "prompt_field": "prompt", "response_field": "response", "messages_field": "messages"},
    "grpo": {"prompt_field": "prompt", "answer_field": "solution", "data_source_field": "data_source"},
    "ppo": {"prompt_field": "prompt", "data_source_field": "data_source"},
    "dpo": {"prompt_field": "prompt", "chosen_field": "chosen", "rejected_field": "rejected"},
    "eval": {"prompt_field": "prompt", "reference_field": "reference", "category_field": "category"},
}
FIELD_KEYS = (
    "prompt_field",
    "response_field",
    "messages_field",
    "chosen_field",
    "rejected_field",
    "answer_field",
    "reference_field",
    "data_source_field",
    "category_field",
)
EXTRA_KEYS = ("data_source_default", "ability")  # RL conversion: data_source where the row has none, ability
OWN_KEYS = {*FIELD_KEYS, *EXTRA_KEYS, "format", "label_fields"}  # other keys belong to other areas and are kept


@dataclass(frozen=True)
class Role:
    """One field a type uses: its role name, the column (or dotted path) that holds it, what it accepts."""

    role: str
    field: str
    rule: ColumnRule
    required: bool
    length: bool  # its length is measured in the audit


def check_type(dataset_type: str) -> str:
    """Return the dataset type if it is known, else raise InvalidInput listing the types."""
    if dataset_type not in DATASET_TYPES:
        raise InvalidInput(f"dataset type: {dataset_type!r} is not one of {', '.join(DATASET_TYPES)}")
    return dataset_type


def roles(dataset_type: str, config: dict[str, Any]) -> list[Role]:
    """Return the roles of a type under a (resolved) field configuration."""
    c = {**DEFAULT_FIELDS[dataset_type], **{k: v for k, v in config.items() if v}}
    if dataset_type == "sft":
        if c.get("format") == "messages":
            return [Role("messages", c["messages_field"], CHAT, True, True)]
        return [
            Role("prompt", c["prompt_field"], TEXT, True, True),
            Role("response", c["response_field"], TEXT, True, True),
        ]
    if dataset_type == "grpo":
        return [
            Role("prompt", c["prompt_field"], PROMPT_RL, True, True),
            Role("answer", c["answer_field"], SCALAR, True, False),
            Role("data_source", c["data_source_field"], SCALAR, False, False),
        ]
    if dataset_type == "ppo":
        return [
            Role("prompt", c["prompt_field"], PROMPT_RL, True, True),
            Role("data_source", c["data_source_field"], SCALAR, False, False),
        ]
    if dataset_type == "dpo":
        return [Role(r, c[f"{r}_field"], TEXT, True, True) for r in ("prompt", "chosen", "rejected")]
    return [
        Role("prompt", c["prompt_field"], TEXT, True, True),
        Role("reference", c["reference_field"], SCALAR, True, True),
        Role("category", c["category_field"], SCALAR, False, False),
    ]


def column_rules(dataset_type: str, config: dict[str, Any]) -> dict[str, ColumnRule]:
    """Rules for the loader: top-level columns that play a role (dotted paths are checked after loading).

    An SFT file whose form (pairs or chat) is not decided yet gets the rules of both forms.
    """
    found = roles(dataset_type, config)
    if dataset_type == "sft" and not config.get("format"):
        found += roles("sft", {**config, "format": "messages"})
    return {r.field: r.rule for r in found if "." not in r.field}


def get_field(table: pa.Table, path: str) -> pa.ChunkedArray | None:
    """Return a column, or a field inside struct columns by a dotted path (`reward_model.ground_truth`), or None."""
    if path in table.column_names:
        return table.column(path)
    head, _, rest = path.partition(".")
    if not rest or head not in table.column_names:
        return None
    array = table.column(head)
    for part in rest.split("."):
        dtype = array.type
        if not pa.types.is_struct(dtype) or dtype.get_field_index(part) < 0:
            return None
        array = pc.struct_field(array, part)
    return array


def resolve_field_config(
    dataset_type: str,
    config: dict[str, Any] | None,
    table: pa.Table,
    name: str,
    outcome: str = "Nothing was stored.",
) -> dict[str, Any]:
    """Fill in defaults and what the file shows (SFT chat or pairs, a verl-style answer, label fields); check presence.

    Raises InvalidInput naming the file, the missing fields and the fields it has, when a required field is absent
    from every row.
    """
    check_type(dataset_type)
    given = {k: v for k, v in (config or {}).items() if v not in (None, "", [])}
    resolved = {**DEFAULT_FIELDS[dataset_type], **given}
    columns = table.column_names
    if dataset_type == "sft" and not resolved.get("format"):
        has_pairs = resolved["prompt_field"] in columns and resolved["response_field"] in columns
        resolved["format"] = (
            "prompt_response" if has_pairs else "messages" if resolved["messages_field"] in columns else None
        )
        if resolved["format"] is None:
            raise InvalidInput(
                f"{name}: an SFT dataset needs '{resolved['prompt_field']}' and '{resolved['response_field']}' fields, "
                f"or a '{resolved['messages_field']}' list of {{role, content}} messages; the records have: "
                f"{_listing(columns)}. Map your fields in Field configuration (CLI: --prompt-field/--response-field "
                f"or --messages-field). {outcome}"
            )
    if dataset_type == "grpo" and "answer_field" not in given and get_field(table, resolved["answer_field"]) is None:
        if get_field(table, "reward_model.ground_truth") is not None:
            resolved["answer_field"] = "reward_model.ground_truth"  # a file already in verl's RL format
    labels = (config or {}).get("label_fields")
    if labels is None:
        labels = [c for c in DEFAULT_LABEL_FIELDS if c in columns]
    resolved["label_fields"] = [str(x) for x in labels]
    for label in resolved["label_fields"]:
        if get_field(table, label) is None:
            raise InvalidInput(f"label field: {label!r} is not a field of {name} (fields: {_listing(columns)})")
    for role in roles(dataset_type, resolved):
        if role.required and get_field(table, role.field) is None:
            flag = f"--{role.role.replace('_', '-')}-field" if role.role != "messages" else "--messages-field"
            raise InvalidInput(
                f"{name}: {dataset_type.upper()} datasets need the field '{role.field}'"
                + (f" ({role.role})" if role.role != role.field else "")
                + ", but no record "
                f"has it; the records have: {_listing(columns)}. If the {role.role} is in another field, choose it in "
                f"Field configuration (CLI: {flag} NAME). {outcome}"
            )
    out = {k: resolved[k] for k in (*DEFAULT_FIELDS[dataset_type], "label_fields")}
    out.update({k: str(given[k]) for k in EXTRA_KEYS if given.get(k)})
    # Keys other areas keep in the configuration (e.g. evaluation's eval_type) pass through unchanged.
    out.update({k: v for k, v in (config or {}).items() if k not in out and k not in OWN_KEYS})
    return out


def _listing(columns: list[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:20])
    return shown + (f" and {len(columns) - 20} more" if len(columns) > 20 else "") if columns else "(no fields)"


# -- validation ----------------------------------------------------------------------------------------------------
EMPTY_PROBLEMS = ("missing", "empty")
PROBLEM_TEXT = {
    "missing": "missing (no value, or null)",
    "empty": "empty (only whitespace)",
    "identical": "chosen and rejected are the same text",
    "no_assistant": "no assistant message (nothing to train on)",
}


@dataclass
class Problem:
    """Rows where one field has one kind of problem; `details` gives per-row text where it varies."""

    field: str
    problem: str  # missing, empty, wrong_type, bad_message, no_assistant, identical
    rows: np.ndarray
    detail: str = ""
    details: dict[int, str] = field(default_factory=dict)

    @property
    def check(self) -> str:
        return "empty" if self.problem in EMPTY_PROBLEMS else "format_errors"

    def text(self, row: int) -> str:
        return self.details.get(row) or self.detail or PROBLEM_TEXT.get(self.problem, self.problem)


@dataclass
class Validation:
    """Row-level validation of a loaded dataset: masks per check and the problems behind them."""

    rows: int
    problems: list[Problem]

    def mask(self, check: str) -> np.ndarray:
        """Boolean mask of rows flagged by the `empty` or `format_errors` check."""
        out = np.zeros(self.rows, dtype=bool)
        for problem in self.problems:
            if problem.check == check:
                out[problem.rows] = True
        return out

    def valid_mask(self) -> np.ndarray:
        return ~(self.mask("empty") | self.mask("format_errors"))

    def row_errors(self, loaded: LoadedTable, check: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The first `limit` row errors (sorted by row): row, place, field, problem and a message naming them."""
        entries = []
        for problem in self.problems:
            if check and problem.check != check:
                continue
            for row in problem.rows[:limit]:
                entries.append((int(row), problem))
        entries.sort(key=lambda e: e[0])
        out = []
        for row, problem in entries[:limit]:
            place = loaded.place(row)
            out.append(
                {
                    "row": row,
                    "place": place,
                    "field": problem.field,
                    "problem": problem.problem,
                    "check": problem.check,
                    "message": f"{loaded.name}: {place}: field '{problem.field}': {problem.text(row)}",
                }
            )
        return out

    def counts(self) -> dict[str, int]:
        """Rows flagged per (field: problem)."""
        return {f"{p.field}: {p.problem}": int(len(p.rows)) for p in self.problems}


def _bool(array) -> np.ndarray:
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


BLANK_PATTERN = r"^[\s\p{Z}]*$"  # ASCII whitespace and Unicode separators (U+3000 ideographic space, NBSP, ...)


def blank_mask(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """True where a string is empty or only whitespace (nulls are False); no trimmed copy is made."""
    return _bool(pc.match_substring_regex(array, BLANK_PATTERN))


def _rows(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask).astype(np.int64)


def _chat_problems(role: Role, array: pa.ChunkedArray, need_assistant: bool) -> list[Problem]:
    lists = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    n = len(lists)
    lengths = np.asarray(pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    flat = lists.flatten()
    parents = np.asarray(pc.list_parent_indices(lists).to_numpy(zero_copy_only=False), dtype=np.int64)
    roles_arr, contents = flat.field("role"), flat.field("content")
    problems = []
    not_null = ~_bool(lists.is_null())
    empty_list = not_null & (lengths == 0)
    blank_turn = blank_mask(contents) if len(flat) else np.zeros(0, bool)  # "" or whitespace only (not null)
    blank_content = blank_turn | _bool(contents.is_null()) if len(flat) else np.zeros(0, bool)
    all_blank = np.zeros(n, dtype=bool)
    some_blank = np.zeros(n, dtype=bool)
    if len(flat):
        nonblank_per_row = np.bincount(parents, weights=~blank_content, minlength=n)
        all_blank = not_null & (lengths > 0) & (nonblank_per_row == 0)
        some_blank[parents[blank_turn]] = True
    if empty_list.any() or all_blank.any() or some_blank.any():
        details = {}
        if some_blank.any():
            blank_rows, first = np.unique(parents[blank_turn], return_index=True)
            flat_index = np.flatnonzero(blank_turn)[first]
            turn_roles = roles_arr.take(pa.array(flat_index)).to_pylist()
            for row, index, turn_role in zip(blank_rows, flat_index, turn_roles, strict=True):
                who = f" ({turn_role})" if turn_role else ""
                details[int(row)] = f"message {int(index - starts[row])}{who} is empty (only whitespace)"
        details.update({int(r): "no messages" for r in _rows(empty_list)})
        details.update({int(r): "every message is empty" for r in _rows(all_blank)})
        problems.append(Problem(role.field, "empty", _rows(empty_list | all_blank | some_blank), details=details))
    bad_role = ~_bool(pc.is_in(roles_arr, pa.array(CHAT_ROLES))) if len(flat) else np.zeros(0, bool)
    null_content = _bool(contents.is_null()) if len(flat) else np.zeros(0, bool)
    bad = bad_role | null_content
    if bad.any():
        bad_rows, first = np.unique(parents[bad], return_index=True)
        flat_index = np.flatnonzero(bad)[first]
        details = {}
        role_values = roles_arr.take(pa.array(flat_index)).to_pylist()
        for row, index, value, is_role in zip(bad_rows, flat_index, role_values, bad_role[flat_index], strict=True):
            number = int(index - starts[row])
            if is_role:
                details[int(row)] = (
                    f"message {number} has no role"
                    if value is None
                    else f"message {number}: role {value!r} is not one of {', '.join(CHAT_ROLES)}"
                )
            else:
                details[int(row)] = f"message {number} has no content"
        problems.append(Problem(role.field, "bad_message", bad_rows.astype(np.int64), details=details))
    if need_assistant:
        # A blank assistant turn is an empty field (above), not a missing assistant.
        assistant = _bool(pc.equal(roles_arr, "assistant")) if len(flat) else np.zeros(0, bool)
        has = np.bincount(parents[assistant], minlength=n) > 0 if len(flat) else np.zeros(n, bool)
        missing = not_null & (lengths > 0) & ~has & ~all_blank
        if missing.any():
            problems.append(Problem(role.field, "no_assistant", _rows(missing)))
    return problems


def validate(loaded: LoadedTable, dataset_type: str, config: dict[str, Any]) -> Validation:
    """Check every row of a loaded dataset against its type and field configuration."""
    table = loaded.table
    n = table.num_rows
    problems: list[Problem] = []
    texts: dict[str, pa.ChunkedArray] = {}
    for role in roles(dataset_type, config):
        array = get_field(table, role.field)
        if array is None:
            if role.required:
                problems.append(Problem(role.field, "missing", np.arange(n, dtype=np.int64)))
            continue
        kind = arrow_kind(array.type)
        issues = loaded.issues.get(role.field, {})
        wrong = np.zeros(n, dtype=bool)
        if issues:
            wrong[list(issues)] = True
            problems.append(
                Problem(role.field, "wrong_type", _rows(wrong), details={int(k): v for k, v in issues.items()})
            )
        null = _bool(array.is_null()) & ~wrong
        if kind not in role.rule.kinds and kind != "null":
            bad = ~null
            problems.append(
                Problem(
                    role.field,
                    "wrong_type",
                    _rows(bad),
                    detail=f"not {role.rule.expected()} (the column holds {array.type})",
                )
            )
            if role.required and null.any():
                problems.append(Problem(role.field, "missing", _rows(null)))
            continue
        if kind == "array" and role.rule.chat:
            if not chat_type_ok(array.type):
                problems.append(
                    Problem(
                        role.field,
                        "wrong_type",
                        _rows(~null),
                        detail=f"not a list of {{role, content}} string messages ({array.type})",
                    )
                )
            else:
                problems.extend(_chat_problems(role, array, need_assistant=dataset_type == "sft"))
        elif kind == "string":
            texts[role.role] = array
            if role.required:
                blank = blank_mask(array)
                if blank.any():
                    problems.append(Problem(role.field, "empty", _rows(blank)))
        if role.required and null.any():
            problems.append(Problem(role.field, "missing", _rows(null)))
    if dataset_type == "dpo" and "chosen" in texts and "rejected" in texts:
        same = _bool(pc.equal(pc.utf8_trim_whitespace(texts["chosen"]), pc.utf8_trim_whitespace(texts["rejected"])))
        same &= ~blank_mask(texts["chosen"])
        if same.any():
            rejected_field = next(r.field for r in roles("dpo", config) if r.role == "rejected")
            problems.append(Problem(rejected_field, "identical", _rows(same)))
    return Validation(n, problems)


def refuse_if_unusable(loaded: LoadedTable, validation: Validation) -> None:
    """Refuse a file in which no row is valid, quoting its first errors."""
    if validation.valid_mask().any():
        return
    errors = validation.row_errors(loaded, limit=3)
    listing = "; ".join(e["message"].removeprefix(f"{loaded.name}: ") for e in errors)
    raise InvalidInput(
        f"{loaded.name}: no row is valid (all {validation.rows} have errors), e.g. {listing}. Nothing was stored."
    )


@dataclass
class Prepared:
    """A loaded dataset with its resolved field configuration and its validation."""

    loaded: LoadedTable
    dataset_type: str
    config: dict[str, Any]
    validation: Validation


def prepare(
    path, fmt: str, dataset_type: str, config: dict[str, Any] | None = None, name: str | None = None
) -> Prepared:
    """Load a dataset file, resolve its field configuration and validate every row."""
    from platform_core.datasets.loader import load_table

    check_type(dataset_type)
    given = {**DEFAULT_FIELDS[dataset_type], **{k: v for k, v in (config or {}).items() if v not in (None, "", [])}}
    loaded = load_table(path, fmt, name, column_rules(dataset_type, given))
    resolved = resolve_field_config(dataset_type, config, loaded.table, loaded.name)
    return Prepared(loaded, dataset_type, resolved, validate(loaded, dataset_type, resolved))
