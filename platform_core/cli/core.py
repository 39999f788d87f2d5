"""Foundation commands: demo, verify-env, gen-key, rotate-key, model, connection, task, settings."""

from __future__ import annotations

import argparse
import json
import sys

from platform_core.cli import add_json_flag, emit, platform_for
from platform_core.errors import InvalidInput


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser("demo", help="the demo kit (tiny model + sample datasets)")
    demo_sub = demo.add_subparsers(dest="demo_command", required=True)
    init = demo_sub.add_parser("init", help="build the demo kit in the workspace (offline)")
    init.add_argument("--force", action="store_true", help="rebuild the model even if it exists")
    init.add_argument("--if-missing", action="store_true", help="do nothing when the demo kit is already there")
    add_json_flag(init)
    init.set_defaults(handler=cmd_demo_init)

    verify = subparsers.add_parser("verify-env", help="check this environment (manager or training node)")
    verify.add_argument("--mode", choices=["manager", "training"], default="manager")
    verify.add_argument("--lang", choices=["en", "zh"], default="en")
    verify.add_argument(
        "--python",
        help="check another interpreter of this machine (a GPU env); 'local' = the training Python set in Settings",
    )
    add_json_flag(verify)
    verify.set_defaults(handler=cmd_verify_env)

    gen = subparsers.add_parser("gen-key", help="print a new encryption key for PLATFORM_SECRET_KEY")
    add_json_flag(gen)
    gen.set_defaults(handler=cmd_gen_key)

    rotate = subparsers.add_parser("rotate-key", help="re-encrypt every stored secret under a new key")
    rotate.add_argument(
        "--new-key-stdin", action="store_true", help="read the new key from stdin instead of generating one"
    )
    add_json_flag(rotate)
    rotate.set_defaults(handler=cmd_rotate_key)

    model = subparsers.add_parser("model", help="registered models")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    add = model_sub.add_parser("add", help="register a local HF model directory")
    add.add_argument("path")
    add.add_argument("--name")
    add_json_flag(add)
    add.set_defaults(handler=cmd_model_add)
    lst = model_sub.add_parser("list", help="list models (scans the workspace and extra directories)")
    lst.add_argument("--location", default="local", help="'local' or a connection name")
    add_json_flag(lst)
    lst.set_defaults(handler=cmd_model_list)
    rename = model_sub.add_parser("rename", help="give a registered model another name")
    rename.add_argument("ref", help="id, name or path")
    rename.add_argument("new_name")
    add_json_flag(rename)
    rename.set_defaults(handler=cmd_model_rename)
    rm = model_sub.add_parser("remove", help="forget a model (files stay)")
    rm.add_argument("ref")
    rm.set_defaults(handler=cmd_model_remove)
    add_dir = model_sub.add_parser("add-dir", help="scan an extra directory for models")
    add_dir.add_argument("path")
    add_dir.add_argument("--location", default="local")
    add_dir.set_defaults(handler=cmd_model_add_dir)

    conn = subparsers.add_parser("connection", help="SSH connection profiles")
    conn_sub = conn.add_subparsers(dest="connection_command", required=True)
    cadd = conn_sub.add_parser("add", help="add a profile (the password is read from stdin)")
    cadd.add_argument("--name", required=True)
    cadd.add_argument("--host", required=True)
    cadd.add_argument("--port", type=int, default=22)
    cadd.add_argument("--user", required=True)
    auth = cadd.add_mutually_exclusive_group(required=True)
    auth.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    auth.add_argument("--key-file", help="a private key file on this machine")
    auth.add_argument("--key-stdin", action="store_true", help="read a private key (PEM/OpenSSH) from standard input")
    cadd.add_argument("--workdir", default="~/verl_jobs")
    cadd.add_argument("--conda-env")
    cadd.add_argument("--python-path")
    add_json_flag(cadd)
    cadd.set_defaults(handler=cmd_connection_add)
    clist = conn_sub.add_parser("list")
    add_json_flag(clist)
    clist.set_defaults(handler=cmd_connection_list)
    ctest = conn_sub.add_parser("test", help="test reachability, auth, work dir, Python stack and GPUs")
    ctest.add_argument("name")
    ctest.add_argument("--accept-host-key", action="store_true", help="trust the server's host key if it is new")
    add_json_flag(ctest)
    ctest.set_defaults(handler=cmd_connection_test)
    crm = conn_sub.add_parser("remove")
    crm.add_argument("name")
    crm.set_defaults(handler=cmd_connection_remove)
    cprep = conn_sub.add_parser("prepare", help="install requirements-gpu.txt on the server and verify it")
    cprep.add_argument("name")
    cprep.add_argument("--requirements", help="another requirements file to install")
    cprep.add_argument("--wait", action="store_true", help="wait for the install and print its log")
    add_json_flag(cprep)
    cprep.set_defaults(handler=cmd_connection_prepare)

    task = subparsers.add_parser("task", help="long-running actions (merges, evals, server preparation, ...)")
    task_sub = task.add_subparsers(dest="task_command", required=True)
    texec = task_sub.add_parser("exec", help="(internal) run a task in this process")
    texec.add_argument("task_id", type=int)
    texec.set_defaults(handler=cmd_task_exec)
    tlist = task_sub.add_parser("list")
    tlist.add_argument("--kind")
    add_json_flag(tlist)
    tlist.set_defaults(handler=cmd_task_list)
    tstatus = task_sub.add_parser("status")
    tstatus.add_argument("task_id", type=int)
    add_json_flag(tstatus)
    tstatus.set_defaults(handler=cmd_task_status)
    tstop = task_sub.add_parser("stop")
    tstop.add_argument("task_id", type=int)
    add_json_flag(tstop)
    tstop.set_defaults(handler=cmd_task_stop)

    settings = subparsers.add_parser("settings", help="show or change settings")
    settings_sub = settings.add_subparsers(dest="settings_command", required=True)
    sshow = settings_sub.add_parser("show")
    add_json_flag(sshow)
    sshow.set_defaults(handler=cmd_settings_show)
    starget = settings_sub.add_parser("target", help="switch the run target: local or ssh:<connection>")
    starget.add_argument("target")
    starget.set_defaults(handler=cmd_settings_target)
    spw = settings_sub.add_parser(
        "access-password", help="set the app's access password (read from stdin; empty clears)"
    )
    spw.set_defaults(handler=cmd_settings_access_password)


def cmd_demo_init(args) -> int:
    from platform_core.workspace.demo import demo_exists, init_demo

    platform = platform_for(args)
    if args.if_missing and demo_exists(platform.workspace) and not args.force:
        emit(args, {"skipped": True}, "demo kit already present")
        return 0
    result = init_demo(platform, force=args.force, log=lambda m: print(m, file=sys.stderr))
    emit(
        args,
        result,
        f"demo kit ready in {platform.workspace.root}\n" + json.dumps(result, indent=2, ensure_ascii=False),
    )
    return 0


def cmd_verify_env(args) -> int:
    from platform_core.envcheck import format_checks
    from platform_core.envcheck import main as envcheck_main

    if not args.python:
        argv = ["--mode", args.mode, "--lang", args.lang] + (["--json"] if args.json else [])
        return envcheck_main(argv)
    from platform_core.runners.local_env import check_python_env

    python = args.python
    if python == "local":
        from platform_core.settings import local_python

        python = local_python(platform_for(args))
    report = check_python_env(python, args.mode)
    emit(args, report, f"{python}\n" + format_checks(report["checks"], args.lang))
    return 0 if report["passed"] else 1


def cmd_gen_key(args) -> int:
    from platform_core.security.secrets import generate_key

    key = generate_key()
    emit(args, {"key": key}, key)
    return 0


def cmd_rotate_key(args) -> int:
    from platform_core.connections import rotate_secrets
    from platform_core.security.secrets import ENV_VAR, generate_key, write_key_file

    platform = platform_for(args)
    new_key = sys.stdin.readline().strip() if args.new_key_stdin else generate_key()
    platform.secret_box()  # fails clearly if the current key is wrong, before anything changes
    source = platform.key_source
    key_file = platform.workspace.key_path
    staged = key_file.with_suffix(".new")
    if source.origin != "env":
        write_key_file(staged, new_key)  # kept until the database commit, so the new key is never lost
    count = rotate_secrets(platform, new_key)
    if source.origin != "env":
        staged.replace(key_file)
        emit(
            args,
            {"reencrypted": count, "key_file": str(key_file)},
            f"re-encrypted {count} secret(s); the new key is in {key_file} (mode 0600)",
        )
    else:
        emit(
            args,
            {"reencrypted": count, "new_key": new_key},
            f"re-encrypted {count} secret(s). Set {ENV_VAR} to the new key before the next start:\n{new_key}",
        )
    return 0


def cmd_model_add(args) -> int:
    from platform_core.models import find_registered, get_model, register_model

    platform = platform_for(args)
    before = find_registered(platform, args.path)
    model_id = register_model(platform, args.path, name=args.name)
    model = get_model(platform, model_id)
    verb = "already registered as" if before else "registered"
    emit(args, {"id": model_id, **model, "existing": bool(before)}, f"{verb} model #{model_id} {model['name']}")
    return 0


def cmd_model_rename(args) -> int:
    from platform_core.models import rename_model

    model = rename_model(platform_for(args), args.ref, args.new_name)
    emit(args, model, f"model #{model['id']} is now {model['name']!r}")
    return 0


def cmd_model_list(args) -> int:
    from platform_core.models import scan_local_models, scan_remote_models

    platform = platform_for(args)
    rows = scan_local_models(platform) if args.location == "local" else scan_remote_models(platform, args.location)
    text = "\n".join(
        f"#{r['id']:<4} {r['name']:<32} {r['architecture'] or '?':<24} "
        f"{(r['params'] or 0) / 1e6:>10.2f}M {r['dtype'] or '?':<9} {r['path']}"
        for r in rows
    )
    emit(args, rows, text or "no models")
    return 0


def cmd_model_remove(args) -> int:
    from platform_core.models import remove_model

    remove_model(platform_for(args), args.ref)
    return 0


def cmd_model_add_dir(args) -> int:
    from platform_core.models import add_model_dir

    add_model_dir(platform_for(args), args.path, args.location)
    return 0


def cmd_connection_add(args) -> int:
    from platform_core.connections import add_connection

    platform = platform_for(args)
    password = private_key = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise InvalidInput("password: nothing was read from standard input")
    if args.key_stdin:
        private_key = sys.stdin.read()
    connection_id = add_connection(
        platform,
        args.name,
        args.host,
        args.user,
        port=args.port,
        password=password,
        private_key=private_key,
        key_path=args.key_file,
        workdir=args.workdir,
        conda_env=args.conda_env,
        python_path=args.python_path,
    )
    source = platform.key_source
    key_created = bool(source and source.created)
    text = f"added connection #{connection_id} {args.name}"
    if key_created:
        text += (
            f"\ncreated a new encryption key in {source.origin} (mode 0600): back it up, or set PLATFORM_SECRET_KEY"
            " to its contents; without it the stored passwords and keys cannot be decrypted"
        )
    data = {"id": connection_id, "key_created": key_created, **({"key_file": source.origin} if key_created else {})}
    emit(args, data, text)
    return 0


def cmd_connection_list(args) -> int:
    from platform_core.connections import list_connections

    rows = list_connections(platform_for(args))
    text = "\n".join(
        f"{r['name']:<20} {r['username']}@{r['host']}:{r['port']} ({r['auth']}) {r['workdir']}" for r in rows
    )
    emit(args, rows, text or "no connections")
    return 0


def cmd_connection_test(args) -> int:
    from platform_core.runners.remote_setup import test_connection

    report = test_connection(platform_for(args), args.name, accept_host_key=args.accept_host_key)
    lines = [f"{'✓' if s.ok else '✗'} {s.name}: {s.detail} ({s.seconds:.1f} s)" for s in report.steps]
    if report.nvidia_smi:
        lines.append(report.nvidia_smi)
    emit(args, report.to_dict(), "\n".join(lines))
    return 0 if report.ok else 1


def cmd_connection_remove(args) -> int:
    from platform_core.connections import remove_connection

    remove_connection(platform_for(args), args.name)
    return 0


def cmd_connection_prepare(args) -> int:
    from platform_core.runners.remote_tasks import start_prepare_server
    from platform_core.tasks import read_log_tail, wait_task

    platform = platform_for(args)
    task_id = start_prepare_server(platform, args.name, args.requirements)
    if not args.wait:
        emit(args, {"task_id": task_id}, f"started task #{task_id}; follow it with `task status {task_id}`")
        return 0
    task = wait_task(platform, task_id, timeout_s=4 * 3600)
    from pathlib import Path

    if not args.json:
        print(read_log_tail(Path(task["log_path"]), 200))
    emit(args, task, f"task #{task_id}: {task['state']}" + (f": {task['error']}" if task.get("error") else ""))
    return 0 if task["state"] == "completed" and (task["result"] or {}).get("passed") else 1


def cmd_task_exec(args) -> int:
    from platform_core.tasks import execute_task

    outcome = execute_task(platform_for(args), args.task_id)
    return 0 if outcome["state"] == "completed" else 1


def cmd_task_list(args) -> int:
    from platform_core.tasks import list_tasks

    rows = list_tasks(platform_for(args), args.kind)
    text = "\n".join(
        f"#{r['id']:<5} {r['kind']:<16} {r['state']:<10} {r['progress'] * 100:5.1f}% {r['title']}" for r in rows
    )
    emit(args, rows, text or "no tasks")
    return 0


def cmd_task_status(args) -> int:
    platform = platform_for(args)
    task = platform.store.require("tasks", args.task_id, "task")
    emit(
        args,
        task,
        f"#{task['id']} {task['kind']} {task['state']} {task['progress'] * 100:.0f}% {task['message'] or ''}",
    )
    return 0


def cmd_task_stop(args) -> int:
    from platform_core.tasks import stop_task

    task = stop_task(platform_for(args), args.task_id)
    emit(args, task, f"#{task['id']} {task['state']}")
    return 0


def cmd_settings_show(args) -> int:
    from platform_core import settings

    platform = platform_for(args)
    data = {key: settings.get(platform, key) for key in settings.DEFAULTS}
    data["run_target"] = settings.run_target(platform)
    data["access_password"] = settings.access_password_required(platform)
    data["workspace"] = str(platform.workspace.root)
    emit(args, data)
    return 0


def cmd_settings_target(args) -> int:
    from platform_core import settings

    settings.set_run_target(platform_for(args), args.target)
    return 0


def cmd_settings_access_password(args) -> int:
    from platform_core import settings

    settings.set_access_password(platform_for(args), sys.stdin.readline().rstrip("\n") or None)
    return 0
