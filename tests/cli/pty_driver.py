#!/usr/bin/env python3
"""Pseudo-terminal driver for envcloak's integration tests (tests/cli).

    pty_driver.py ctrl-c READY_FILE TIMEOUT CMD [ARGS...]
        Runs CMD as the session leader of a new pseudo-terminal (so it is the
        terminal's foreground process group), waits until READY_FILE exists,
        types Ctrl-C once, and waits for CMD to end.

    pty_driver.py answer ANSWER TIMEOUT CMD [ARGS...]
        Runs CMD on a new pseudo-terminal and answers every prompt (output
        ending in ":") that mentions "passphrase" with ANSWER and Enter.

    pty_driver.py reply ANSWERS TIMEOUT CMD [ARGS...]
        Runs CMD on a new pseudo-terminal and answers each new prompt
        (output ending in ":" or "]") with the next line of ANSWERS and Enter;
        saves the screen to $PTY_SCREEN when set.

    pty_driver.py screen SCREEN_FILE TIMEOUT CMD [ARGS...]
        Runs CMD on a new pseudo-terminal, types nothing, and saves what it
        wrote on the terminal to SCREEN_FILE.

Prints one JSON object on stdout:
    {"exit": CODE, "timed_out": BOOL, "typed": N}
CODE is the exit status, or 128+N when CMD died of signal N; "typed" counts
the Ctrl-Cs or answers typed. What CMD wrote on the terminal is not printed (only saved, in screen mode).
"""

import json
import os
import pty
import select
import signal
import sys
import time


def kill_session(sid):
    """SIGKILLs every process of session `sid` (CMD and all it started)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[3]) == sid:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, IndexError, ValueError):
            pass


def drain(master):
    """What is left to read on the terminal once CMD has ended."""
    rest = bytearray()
    while select.select([master], [], [], 0.05)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        rest += chunk
    return rest


def main():
    mode, arg, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    command = sys.argv[4:]
    pid, master = pty.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)

    deadline = time.monotonic() + timeout
    screen = bytearray()
    typed = 0
    status = None
    ready_since = None
    answers = arg.split("\n") if mode == "reply" else []
    # Where to save the screen: screen mode's argument, or $PTY_SCREEN.
    screen_file = arg if mode == "screen" else os.environ.get("PTY_SCREEN")
    answered_at = 0
    while status is None:
        if time.monotonic() > deadline:
            kill_session(pid)
            os.waitpid(pid, 0)
            if screen_file:
                with open(screen_file, "wb") as saved:
                    saved.write(screen)
            print(json.dumps({"exit": None, "timed_out": True, "typed": typed}))
            return
        if mode == "ctrl-c" and typed == 0 and os.path.exists(arg):
            # Give the supervisor a moment to hand the terminal over.
            ready_since = ready_since or time.monotonic()
            if time.monotonic() - ready_since >= 0.1:
                os.write(master, b"\x03")
                typed += 1
        waiting = screen.rstrip(b" ").endswith(b":")  # a prompt, not a message
        if mode == "answer" and waiting and screen.lower().count(b"passphrase") > typed:
            time.sleep(0.05)  # let the program turn echo off and read
            os.write(master, arg.encode() + b"\n")
            typed += 1
        fresh = screen[answered_at:].rstrip(b" ")
        if mode == "reply" and typed < len(answers) and fresh.endswith((b":", b"]")):
            time.sleep(0.05)  # let the program turn echo off and read
            os.write(master, answers[typed].encode() + b"\n")
            typed += 1
            answered_at = len(screen)
        readable, _, _ = select.select([master], [], [], 0.01)
        if readable:
            try:
                screen += os.read(master, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                pass
        done, wait_status = os.waitpid(pid, os.WNOHANG)
        if done:
            status = wait_status
    screen += drain(master)
    if screen_file:
        with open(screen_file, "wb") as saved:
            saved.write(screen)
    if os.WIFSIGNALED(status):
        code = 128 + os.WTERMSIG(status)
    else:
        code = os.WEXITSTATUS(status)
    print(json.dumps({"exit": code, "timed_out": False, "typed": typed}))


if __name__ == "__main__":
    main()
