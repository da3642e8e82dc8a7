"""Drives an interactive terminal program the way a person would: answer its prompts, type a line, read the reply.

    python pty_drive.py --transcript FILE --answer TEXT=KEYS ... --ready TEXT --type LINE --expect TEXT -- ARGV...

Runs ARGV on a pseudo-terminal. Whenever the screen shows an ``--answer`` TEXT it had not shown before, KEYS
are typed (``\\r`` is Enter). Once the ``--ready`` TEXT shows, LINE and Enter are typed. Exit 0 as soon as the
``--expect`` TEXT shows after that; exit 1 at ``--timeout``. Screens are compared with escape sequences and
all whitespace removed (full-screen programs move the cursor instead of printing spaces). The raw output goes
to the transcript file. The program is killed (its whole process group) before exiting.
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import signal
import sys
import time

_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def screen_text(raw: bytes) -> str:
    """What the terminal showed, without escape sequences or whitespace."""
    return re.sub(r"\s+", "", _ESCAPES.sub(b"", raw).decode("utf-8", "replace"))


def squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transcript", required=True)
    parser.add_argument("--answer", action="append", default=[], metavar="TEXT=KEYS")
    parser.add_argument("--ready", required=True)
    parser.add_argument("--type", required=True, dest="line")
    parser.add_argument("--expect", required=True)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("argv", nargs="+")
    options = parser.parse_args()
    answers = [
        (squeeze(text), keys.encode().decode("unicode_escape"))
        for text, _, keys in (a.partition("=") for a in options.answer)
    ]

    pid, fd = pty.fork()
    if pid == 0:  # the child: the program, on the terminal
        os.execvp(options.argv[0], options.argv)
    raw = b""
    answered_at: dict[str, int] = {}
    typed_at: int | None = None
    found = False
    deadline = time.monotonic() + options.timeout
    while time.monotonic() < deadline and not found:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the program exited
                break
            raw += data
        screen = screen_text(raw)
        for text, keys in answers:
            seen = screen.rfind(text)
            if seen >= 0 and seen > answered_at.get(text, -1):
                answered_at[text] = len(screen)
                time.sleep(0.3)  # let the prompt finish drawing before answering it
                os.write(fd, keys.encode())
        if typed_at is None and squeeze(options.ready) in screen:
            typed_at = len(screen)
            time.sleep(0.3)
            os.write(fd, options.line.encode())
            time.sleep(0.3)
            os.write(fd, b"\r")
        if typed_at is not None and squeeze(options.expect) in screen[typed_at:]:
            found = True
    with open(options.transcript, "wb") as out:
        out.write(raw)
    try:
        os.killpg(pid, signal.SIGKILL)  # pty.fork made the child a session (and group) leader
    except OSError:
        pass
    os.waitpid(pid, 0)
    if not found:
        print(f"pty_drive: {options.expect!r} not seen within {options.timeout} s; screen: {screen_text(raw)[-2000:]}")
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main())
