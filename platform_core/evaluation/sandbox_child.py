"""The child side of the code sandbox (stdlib only; run by file path, never imported by the platform).

    python -I -S -B sandbox_child.py launch NETNS UID SCRATCH PYTHON PROGRAM GUARD LIMITS   # as the evaluator
        new network and PID namespaces, fork; the child sets resource limits, drops to the sandbox uid, changes to
        the scratch directory and execs (as PID 1 of its namespace, so everything it starts dies and is reaped
        with it):
    python -I -S -B sandbox_child.py guard program.py         # as the sandbox uid
        install an audit hook that refuses sockets, new processes and ctypes, then run the program as __main__.
    python -I -S -B sandbox_child.py killall UID              # as root
        become UID and kill every process of it in one kill(-1).

The launcher is a fresh single-threaded process, which is why the limits are set here and not in a `preexec_fn`
(unsafe when the evaluator has threads). Both sides import as little as possible (no json, re or runpy): every
millisecond of start-up is paid once per program.
"""

import os
import sys

CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
SETUP_FAILED = 97

BLOCKED_EVENTS = (
    "socket.__new__",
    "socket.connect",
    "socket.bind",
    "socket.getaddrinfo",
    "socket.sendto",
    "socket.sendmsg",
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "pty.spawn",
    "ctypes.dlopen",
    "ctypes.dlsym",
    "ctypes.cdata",
)


def _fail(message):
    sys.stderr.write(f"sandbox setup failed: {message}\n")
    sys.stderr.flush()
    os._exit(SETUP_FAILED)


def parse_config(argv):
    """NETNS UID SCRATCH PYTHON PROGRAM GUARD LIMITS, e.g. `root 1000001 /tmp/s /usr/bin/python3 /tmp/s/p.py 1
    RLIMIT_AS=1073741824,RLIMIT_CPU=6`; "-" for no namespace / no uid."""
    netns, uid, scratch, python, program, guard, limits = argv
    return {
        "netns": None if netns == "-" else netns,
        "uid": None if uid == "-" else int(uid),
        "scratch": scratch,
        "python": python,
        "program": program,
        "guard": guard == "1",
        "child": os.path.abspath(__file__),
        "limits": {k: int(v) for k, v in (item.split("=") for item in limits.split(",") if item)},
    }


def _unshare(flags):
    if hasattr(os, "unshare"):  # Python 3.12+
        os.unshare(flags)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare failed")


def launch(config):
    """Enter new namespaces, fork the program's process (PID 1 of its own PID namespace), wait, pass on its end."""
    import signal

    netns = config.get("netns")
    if netns:
        try:
            _unshare(CLONE_NEWNET | CLONE_NEWPID | (CLONE_NEWUSER if netns == "userns" else 0))
        except OSError as exc:
            _fail(f"unshare({netns}): {exc}")
    pid = os.fork()
    if pid == 0:
        _run_program(config)
    while True:
        try:
            _pid, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    # When the program (the namespace's init) ends, the kernel kills and reaps everything it left in the namespace.
    if os.WIFSIGNALED(status):
        import resource

        number = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _run_program(config):
    import resource

    for name, value in config["limits"].items():
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
        except (ValueError, OSError) as exc:
            _fail(f"setrlimit {name}={value}: {exc}")
    uid = config.get("uid")
    if uid is not None:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        except OSError as exc:
            _fail(f"dropping to uid {uid}: {exc}")
    os.chdir(config["scratch"])
    env = {"PATH": "/usr/bin:/bin", "HOME": config["scratch"], "TMPDIR": config["scratch"], "LANG": "C.UTF-8"}
    python = config["python"]
    if config.get("guard"):
        argv = [python, "-I", "-S", "-B", config["child"], "guard", config["program"]]
    else:
        argv = [python, "-I", "-S", "-B", config["program"]]
    try:
        os.execve(python, argv, env)
    except OSError as exc:
        _fail(f"exec {python}: {exc}")


def guard(program):
    def hook(event, args):
        if event in BLOCKED_EVENTS:
            raise PermissionError(f"{event} is not allowed in the evaluation sandbox")

    with open(program, "rb") as handle:
        code = compile(handle.read(), program, "exec")
    sys.addaudithook(hook)
    sys.argv = [program]
    exec(code, {"__name__": "__main__", "__file__": program, "__builtins__": __builtins__})  # noqa: S102


def kill_all(uid):
    """Become the uid and SIGKILL every process of it at once (the kernel sends kill(-1) to all of them while
    holding the task list, so a fork bomb cannot outrun it the way a pid-by-pid sweep can be outrun)."""
    import signal

    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    if sys.argv[1] == "launch":
        launch(parse_config(sys.argv[2:]))
    elif sys.argv[1] == "guard":
        guard(sys.argv[2])
    elif sys.argv[1] == "killall":
        kill_all(int(sys.argv[2]))
