"""Servers that tests start themselves: ports on 127.0.0.1 and a bounded way to stop them."""

import socket
import subprocess
from pathlib import Path

__all__ = ["free_port", "stop", "tail"]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if the process has not exited within `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


def tail(log: Path, lines: int = 40) -> str:
    """The last `lines` lines of a server's log, to put in a failure message."""
    if not log.exists():
        return f"({log} was not written)"
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"--- last {len(text)} lines of {log} ---\n" + "\n".join(text)
