"""Kernels forked from a warm server: a fresh process per document without paying its imports.

A Jupyter kernel started as Quarto starts it (``python -m ipykernel_launcher``) imports
ipykernel, IPython and then whatever the document imports, in every document: for a report
whose documents import the same scientific stack that is seconds of CPU each, most of a
document's execution.  Here each kernel is still a new process of its own, started for one
document and shut down after it, but it is forked from a server process that has imported
those modules once.  What a document sees is what a freshly launched kernel sees: its own
process and session, its working directory and environment; the engine's setup code
(execute.py) then configures matplotlib as in every kernel, so a module imported in advance
changes no output, only when its import is paid for.

Why a small server of our own and not ``multiprocessing``'s fork server: that one re-imports
the parent's ``__main__`` script in every child (its "safe importing of main module" rule),
which a library must not impose on its callers' scripts; this one forks the server's own
state and nothing else.

The server (:func:`_serve`, a child of the renderer's process) reads one JSON request a line
on a socket (connection file, working directory, environment), forks, and answers with the
new process's id; a request may also be a call that the server makes once, before it forks the
kernels asked for after it (:func:`prepare`: e.g. reading what every document reads, with the
render's parameters, which a document would otherwise read again in each kernel); it reports each child's exit status the same way, and ends when the
renderer's end of the socket closes.  :class:`ForkProvisioner` is a ``jupyter_client``
provisioner that launches kernels through it and is otherwise the local provisioner (signals,
shutdown, cleanup).  :func:`start_server` starts the server early, so that its imports overlap
other work; without it the first kernel starts it.  Where fork is unavailable (Windows)
:func:`available` is false and kernels are launched as usual.
"""

from __future__ import annotations

import atexit
import itertools
import json
import os
import select
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable
from importlib import import_module
from pathlib import Path
from typing import Any

from jupyter_client.provisioning import LocalProvisioner

#: what every kernel imports before it runs a cell (ipykernel's application and IPython, and what
#: its start imports: the debugger's debugpy, the history's sqlite, IPython's completer and magics)
_KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "matplotlib_inline.backend_inline",
                   "ipykernel.debugger", "IPython.core.history", "IPython.core.debugger", "IPython.core.completerlib",
                   "IPython.extensions.storemagic", "tornado.platform.asyncio")
#: how often the server looks for ended children, and for its parent's end when idle (seconds)
_REAP_EVERY = 0.02
_PARENT_EVERY = 1.0


def available() -> bool:
    """True where kernels can be forked (POSIX)."""
    return os.name == "posix" and hasattr(os, "fork")


# --- the server process ------------------------------------------------------------------------
def _kernel_main(connection_file: str, cwd: str, env: dict[str, str]) -> None:
    """In the forked process: become what ``python -m ipykernel_launcher -f FILE`` started in
    ``cwd`` with ``env`` would be, and serve until the kernel is shut down."""
    os.setsid()  # its own session and process group, as the local provisioner starts a kernel
    os.environ.clear()
    os.environ.update(env)
    os.environ["JPY_PARENT_PID"] = parent = str(os.getppid())  # the kernel ends if the server does
    os.chdir(cwd)
    # ipykernel read JPY_PARENT_PID when the server imported it: given again as an option
    from importlib.util import find_spec

    from ipykernel import kernelapp

    launcher = find_spec("ipykernel_launcher")
    sys.argv = [launcher.origin if launcher and launcher.origin else sys.executable, "-f", connection_file]
    kernelapp.launch_new_instance(argv=["-f", connection_file, f"--IPKernelApp.parent_handle={parent}"])


def _child(sock: socket.socket, request: dict[str, Any]) -> None:
    """The forked child: run the kernel, then exit as an interpreter would (exit handlers,
    flushed streams), never returning into the server's loop."""
    sock.close()
    code = 0
    try:
        _kernel_main(request["connection_file"], request["cwd"], request["env"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - reported on stderr as an interpreter would
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _serve(fd: int, preload: list[str], parent: int | None = None) -> None:
    """The server's loop: import ``preload``, then fork one child per request until the
    socket closes or its ``parent`` (the renderer's process id) ends (module docstring)."""
    # debugpy (imported with ipykernel's debugger) would print a four-line warning about Python's
    # frozen modules into the user's terminal: it concerns breakpoints, and a render sets none
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    for name in preload:
        try:
            import_module(name)
        except Exception:  # noqa: BLE001 - the document then imports it (and reports any error) itself
            pass
    sock = socket.socket(fileno=fd)
    pending = b""
    children: set[int] = set()
    parent = os.getppid() if parent is None else parent

    def send(message: dict[str, Any]) -> None:
        sock.sendall(json.dumps(message).encode() + b"\n")

    while True:
        ready, _, _ = select.select([sock], [], [], _REAP_EVERY if children else _PARENT_EVERY)
        if os.getppid() != parent:
            return  # the renderer was killed (a process it forked may still hold its end of the socket)
        if ready:
            data = sock.recv(1 << 16)
            if not data:
                return  # the renderer is gone; the kernels notice their parent's exit
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                if "call" in request:
                    _call(request["call"], request["kwargs"])
                    continue
                pid = os.fork()
                if pid == 0:
                    _child(sock, request)
                children.add(pid)
                send({"id": request["id"], "pid": pid})
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            children.discard(pid)
            send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _call(target: str, kwargs: dict[str, Any]) -> None:
    """``module:function(**kwargs)`` in the server (:func:`prepare`); a failure changes nothing
    but that each document then does the work itself."""
    module, _, name = target.partition(":")
    try:
        getattr(import_module(module), name)(**kwargs)
    except Exception:  # noqa: BLE001 - the documents do it themselves (and report any error)
        pass


# --- the renderer's side -----------------------------------------------------------------------
class _Server:
    """The running server, seen from the renderer: forks on request, knows its children's exits."""

    def __init__(self, preload: Iterable[str]) -> None:
        ours, theirs = socket.socketpair()
        code = ("import sys; del sys.path[0]; from cementleak_stats.render.forkkernel import _serve; "
                f"_serve({theirs.fileno()}, {list(preload)!r}, {os.getpid()})")
        self.process = subprocess.Popen([sys.executable, "-c", code], pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        theirs.close()
        self._sock = ours
        self._ids = itertools.count()
        self._pids: dict[int, int] = {}
        self._exits: dict[int, int] = {}
        self._gone = False
        self._changed = threading.Condition()
        # the thread that reads the server's answers starts with the first kernel: a process that
        # starts the server early (beside its own work) has no thread of ours when it forks
        self._listener: threading.Thread | None = None
        #: the calls sent (prepare): each made once by this server
        self.called: set[str] = set()

    def call(self, target: str, kwargs: dict[str, Any]) -> None:
        """Have the server call ``target`` with ``kwargs`` once, before the kernels asked for later."""
        request = json.dumps({"call": target, "kwargs": kwargs}, sort_keys=True)
        with self._changed:
            if request in self.called:
                return
            self.called.add(request)
        try:
            self._sock.sendall(request.encode() + b"\n")
        except OSError:  # the server has ended: kernels are then launched as usual
            pass

    def _listen(self) -> None:
        with self._sock.makefile("rb") as lines:
            for line in lines:
                message = json.loads(line)
                with self._changed:
                    if "pid" in message:
                        self._pids[message["id"]] = message["pid"]
                    else:
                        self._exits[message["exit"]] = message["code"]
                    self._changed.notify_all()
        with self._changed:
            self._gone = True
            self._changed.notify_all()

    def fork(self, connection_file: str, cwd: str, env: dict[str, str]) -> int:
        """A new kernel process's id; OSError when the server has ended."""
        with self._changed:
            ident = next(self._ids)
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen, name="cementleak-forkserver", daemon=True)
                self._listener.start()
        request = {"id": ident, "connection_file": connection_file, "cwd": cwd, "env": env}
        self._sock.sendall(json.dumps(request).encode() + b"\n")
        with self._changed:
            self._changed.wait_for(lambda: ident in self._pids or self._gone)
            if ident not in self._pids:
                raise OSError("the kernel fork server has ended")
            return self._pids.pop(ident)

    def exit_code(self, pid: int, timeout: float | None = 0) -> int | None:
        """The exit status of child ``pid``, or None while it runs (waiting up to ``timeout``)."""
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or self._gone, timeout=timeout)
            if pid in self._exits:
                return self._exits[pid]
        if self._gone:  # no server to report it: alive as long as the pid is
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return -1
        return None


_lock = threading.Lock()
_server: _Server | None = None


def start_server(preload: Iterable[str] = ()) -> None:
    """Start the fork server, importing the kernel's modules and ``preload`` (module names,
    e.g. what the documents import) in it, in the background.  The first call fixes the
    preload; later calls change nothing while it runs."""
    global _server
    with _lock:
        if _server is None or _server.process.poll() is not None:
            _server = _Server(dict.fromkeys([*_KERNEL_MODULES, *preload]))


def prepare(target: str, kwargs: dict[str, Any]) -> None:
    """Have the server (started if need be) call ``target`` (``"module:function"``) with ``kwargs``
    (JSON values) once, before it forks the next kernels: what they inherit, every document
    finds done.  The call must leave no thread or open connection behind (the server forks)."""
    _running().call(target, kwargs)


def _running() -> _Server:
    start_server()
    assert _server is not None
    return _server


class _Forked:
    """The forked kernel as the local provisioner handles a launched one (``subprocess.Popen``'s
    methods)."""

    stdin = stdout = stderr = None

    def __init__(self, server: _Server, pid: int) -> None:
        self._server = server
        self.pid = pid

    def poll(self) -> int | None:
        return self._server.exit_code(self.pid)

    def wait(self, timeout: float | None = None) -> int | None:
        return self._server.exit_code(self.pid, timeout=timeout)

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:  # never a signal to a reused pid
            os.kill(self.pid, signum)

    def kill(self) -> None:
        import signal

        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        import signal

        self.send_signal(signal.SIGTERM)


class ForkProvisioner(LocalProvisioner):  # type: ignore[misc]
    """The local provisioner, launching the kernel by forking it from the warm server."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        server = _running()
        cwd = str(kwargs.get("cwd") or Path.cwd())
        env = {str(k): str(v) for k, v in (kwargs.get("env") or os.environ).items()}
        try:
            pid = server.fork(cmd[cmd.index("-f") + 1], cwd, env)
        except OSError:  # the server has ended: launched as usual
            return await super().launch_kernel(cmd, **kwargs)
        self.process = _Forked(server, pid)
        self.pid = pid
        self.pgid = None  # signals go to the kernel itself (its process group is its own)
        self.cwd = cwd
        return self.connection_info
