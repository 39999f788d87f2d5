"""Dataset commands: add, list, show, audit, preview, fields, convert, export, sync, sync-status, remote-list,
remove."""

from __future__ import annotations

import argparse
import sys

from platform_core.cli import add_json_flag, emit, platform_for

FIELD_FLAGS = ("prompt", "response", "messages", "chosen", "rejected", "answer", "reference", "data_source", "category")


def _add_field_flags(parser: argparse.ArgumentParser) -> None:
    for name in FIELD_FLAGS:
        parser.add_argument(
            f"--{name.replace('_', '-')}-field",
            dest=f"{name}_field",
            metavar="NAME",
            help=f"the field that holds the {name.replace('_', ' ')}",
        )
    parser.add_argument(
        "--label-field",
        action="append",
        dest="label_fields",
        metavar="NAME",
        help="a field to count as a label (repeatable)",
    )
    parser.add_argument(
        "--sft-format",
        choices=["prompt_response", "messages"],
        dest="format",
        help="SFT records: prompt/response pairs or chat messages (default: detected)",
    )


def _field_config(args: argparse.Namespace) -> dict:
    config = {f"{name}_field": getattr(args, f"{name}_field") for name in FIELD_FLAGS}
    config["label_fields"] = args.label_fields
    config["format"] = args.format
    return {k: v for k, v in config.items() if v}


def register(subparsers: argparse._SubParsersAction) -> None:
    dataset = subparsers.add_parser("dataset", help="datasets: upload, audit, convert, sync")
    sub = dataset.add_subparsers(dest="dataset_command", required=True)

    add = sub.add_parser("add", help="validate and store a .json / .jsonl / .parquet dataset")
    add.add_argument("file")
    add.add_argument("--type", required=True, choices=["sft", "grpo", "ppo", "dpo", "eval"])
    add.add_argument("--name", required=True)
    add.add_argument("--description")
    add.add_argument(
        "--convert-encoding",
        nargs="?",
        const=True,
        default=False,
        metavar="ENCODING",
        help="convert a file that is not UTF-8 (from the detected encoding, or from ENCODING)",
    )
    _add_field_flags(add)
    add_json_flag(add)
    add.set_defaults(handler=cmd_add)

    lst = sub.add_parser("list", help="list datasets (newest first)")
    lst.add_argument("--connection", help="also show the sync status on this SSH connection")
    add_json_flag(lst)
    lst.set_defaults(handler=cmd_list)

    show = sub.add_parser("show", help="one dataset's record")
    show.add_argument("ref", help="id or name (a name means its latest version)")
    add_json_flag(show)
    show.set_defaults(handler=cmd_show)

    audit = sub.add_parser("audit", help="distributions, lengths (chars and tokens) and quality checks")
    audit.add_argument("ref")
    audit.add_argument("--tokenizer", help="a local model directory, or a registered model's name or id")
    audit.add_argument("--max-length", type=int, help="report the fraction of rows longer than this (tokens)")
    audit.add_argument("--refresh", action="store_true", help="recompute instead of using the cache")
    add_json_flag(audit)
    audit.set_defaults(handler=cmd_audit)

    pre = sub.add_parser("preview", help="a page of rows")
    pre.add_argument("ref")
    pre.add_argument("--page", type=int, default=0)
    pre.add_argument("--page-size", type=int, default=10)
    pre.add_argument("--search", default="")
    add_json_flag(pre)
    pre.set_defaults(handler=cmd_preview)

    fields = sub.add_parser("fields", help="change the field configuration")
    fields.add_argument("ref")
    _add_field_flags(fields)
    add_json_flag(fields)
    fields.set_defaults(handler=cmd_fields)

    conv = sub.add_parser("convert", help="write the Parquet an engine reads; prints its path")
    conv.add_argument("ref")
    conv.add_argument(
        "--target",
        choices=["verl_rl", "verl_sft", "trl_dpo", "trl_rl", "raw"],
        help="default: the type's engine format",
    )
    add_json_flag(conv)
    conv.set_defaults(handler=cmd_convert)

    export = sub.add_parser("export", help="store a cleaned version without the flagged rows")
    export.add_argument("ref")
    export.add_argument(
        "--drop",
        default="empty,format_errors,duplicate_normalized",
        help="checks whose rows are dropped (comma-separated; also duplicate_exact, length_outliers)",
    )
    export.add_argument("--name", help="name of the new version (default: the same name)")
    add_json_flag(export)
    export.set_defaults(handler=cmd_export)

    sync = sub.add_parser("sync", help="upload datasets to an SSH connection's work directory")
    sync.add_argument("refs", nargs="*", help="ids or names")
    sync.add_argument("--all", action="store_true", help="every dataset")
    sync.add_argument("--connection", required=True)
    sync.add_argument("--kind", help="a conversion target or 'original' (default: the type's engine format)")
    add_json_flag(sync)
    sync.set_defaults(handler=cmd_sync)

    status = sub.add_parser("sync-status", help="synced / syncing / failed / changed / not synced per dataset")
    status.add_argument("--connection", required=True)
    add_json_flag(status)
    status.set_defaults(handler=cmd_sync_status)

    remote = sub.add_parser("remote-list", help="the files in an SSH connection's <workdir>/datasets/ folder")
    remote.add_argument("--connection", required=True)
    add_json_flag(remote)
    remote.set_defaults(handler=cmd_remote_list)

    rm = sub.add_parser("remove", help="delete a dataset (its file too when no other record uses it)")
    rm.add_argument("ref")
    add_json_flag(rm)
    rm.set_defaults(handler=cmd_remove)


def cmd_add(args) -> int:
    from pathlib import Path

    from platform_core.datasets.service import add_dataset

    result = add_dataset(
        platform_for(args),
        Path(args.file),
        args.type,
        args.name,
        field_config=_field_config(args),
        description=args.description,
        convert_encoding=args.convert_encoding,
    )
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    verb = "already stored as" if result["existing"] else "added"
    emit(args, result, f"{verb} dataset #{result['id']} {result['name']}: {result['rows']} rows")
    return 0


def cmd_list(args) -> int:
    from platform_core.datasets.service import list_datasets

    platform = platform_for(args)
    rows = list_datasets(platform)
    if args.connection:
        from platform_core.datasets.sync import sync_status

        status = sync_status(platform, args.connection, rows)
        for row in rows:
            row["sync"] = status[row["id"]]
    text = "\n".join(
        f"#{r['id']:<4} {r['name']:<28} v{r['version']:<3} {r['type']:<5} {r['rows']:>9,} rows "
        f"{r['size_bytes'] / 2**20:>9.2f} MiB" + (f"  {r['sync']['status']}" if "sync" in r else "")
        for r in rows
    )
    emit(args, rows, text or "no datasets")
    return 0


def cmd_show(args) -> int:
    from platform_core.datasets.service import dataset_path, get_dataset

    platform = platform_for(args)
    record = get_dataset(platform, args.ref)
    record["file"] = str(dataset_path(platform, record))
    emit(args, record)
    return 0


def cmd_audit(args) -> int:
    from platform_core.datasets.audit import audit_dataset

    result = audit_dataset(platform_for(args), args.ref, args.tokenizer, args.max_length, refresh=args.refresh)
    if args.json:
        emit(args, result)
        return 0
    lines = [f"dataset #{result['dataset_id']} {result['name']}: {result['rows']} rows ({result['valid_rows']} valid)"]
    for name, check in result["checks"].items():
        shown = ", ".join(str(r) for r in check["rows"][:10]) + (" ..." if check["count"] > 10 else "")
        lines.append(f"  {name:<21} {check['count']:>8}" + (f"  rows {shown}" if check["count"] else ""))
    for name, units in result["lengths"].items():
        for unit, s in units.items():
            if s["count"]:
                lines.append(
                    f"  {name:<9} {unit:<6} p50 {s['p50']:.0f}  p90 {s['p90']:.0f}  p99 {s['p99']:.0f}  "
                    f"max {s['max']}  mean {s['mean']:.1f}"
                )
    for name, fraction in (result.get("truncated") or {}).items():
        lines.append(f"  {fraction * 100:.1f}% of {name} longer than {result['max_length']} {result['truncated_unit']}")
    print("\n".join(lines))
    return 0


def cmd_preview(args) -> int:
    from platform_core.datasets.service import preview

    page = preview(platform_for(args), args.ref, args.page, args.page_size, args.search)
    emit(args, page)
    return 0


def cmd_fields(args) -> int:
    from platform_core.datasets.service import update_field_config

    config = update_field_config(platform_for(args), args.ref, _field_config(args))
    emit(args, config)
    return 0


def cmd_convert(args) -> int:
    from platform_core.datasets.service import convert_for

    path = convert_for(platform_for(args), args.ref, args.target)
    emit(args, {"path": str(path)}, str(path))
    return 0


def cmd_export(args) -> int:
    from platform_core.datasets.service import export_cleaned

    drop = [c.strip() for c in args.drop.split(",") if c.strip()]
    result = export_cleaned(platform_for(args), args.ref, drop, name=args.name)
    emit(args, result, f"dataset #{result['id']} {result['name']}: {result['rows']} rows ({result['dropped']} dropped)")
    return 0


def cmd_sync(args) -> int:
    from platform_core.connections import get_connection
    from platform_core.datasets.service import get_dataset, list_datasets
    from platform_core.datasets.sync import check_kind, kind_fits, sync_datasets
    from platform_core.errors import InvalidInput

    platform = platform_for(args)
    check_kind(args.kind)
    get_connection(platform, args.connection)  # an unknown connection is an error (exit 2), even with nothing to sync
    if args.all and args.refs:
        raise InvalidInput("dataset sync: give dataset ids/names or --all, not both")
    if not args.all and not args.refs:
        raise InvalidInput("dataset sync: give dataset ids/names, or --all for every dataset")
    records = list_datasets(platform) if args.all else [get_dataset(platform, ref) for ref in args.refs]
    skipped: dict[int, dict] = {}
    if args.all:  # every dataset that can be synced in that kind (a type that does not convert to it is skipped)
        skipped = {
            r["id"]: {"skipped": f"a {r['type'].upper()} dataset cannot be synced as {args.kind}"}
            for r in records
            if not kind_fits(r, args.kind)
        }
    ids = [r["id"] for r in records if r["id"] not in skipped]
    results = sync_datasets(platform, ids, args.connection, kind=args.kind) if ids else {}
    results = {**results, **skipped}
    text = "\n".join(
        f"#{k}: " + (v.get("remote_path") or (f"skipped: {v['skipped']}" if "skipped" in v else f"FAILED {v['error']}"))
        for k, v in results.items()
    )
    emit(args, results, text or "no datasets to sync")
    return 1 if any("error" in v for v in results.values()) else 0


def cmd_sync_status(args) -> int:
    from platform_core.datasets.sync import sync_status

    status = sync_status(platform_for(args), args.connection)
    emit(args, status, "\n".join(f"#{k}: {v['status']}" for k, v in status.items()) or "no datasets")
    return 0


def cmd_remote_list(args) -> int:
    import time

    from platform_core.datasets.sync import list_remote_datasets

    listing = list_remote_datasets(platform_for(args), args.connection)

    def line(f: dict) -> str:
        owner = f"#{f['dataset_id']} {f['dataset_name']} v{f['version']} ({f['kind'] or '?'}" + (
            ", other field configuration)" if f["match"] == "other_config" else ")"
        )
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(f["mtime"] or 0))
        what = "partial upload" if f["partial"] else (owner if f["dataset_id"] else "no local record")
        return f"{f['name']:<56} {f['size_bytes'] / 2**20:>9.2f} MiB  {stamp}  {what}"

    text = f"{listing['folder']}:\n" + ("\n".join(line(f) for f in listing["files"]) or "  (empty)")
    emit(args, listing, text)
    return 0


def cmd_remove(args) -> int:
    from platform_core.datasets.service import remove_dataset

    result = remove_dataset(platform_for(args), args.ref)
    emit(args, result, f"removed dataset #{result['id']} {result['name']}")
    return 0
