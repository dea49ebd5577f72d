#!/usr/bin/env python3
"""Runs a command with its stdout (or, with --stderr, its stderr) on a pseudo-terminal, as if a
person ran it in a shell.

Prints what reached the terminal to our stdout and exits with the command's exit code. The other
stream: without --stderr, the command's stderr passes through to ours; with --stderr, the
command's stdout goes to /dev/null. stdin is /dev/null.
Usage: with_tty.py [--stderr] CMD [ARGS...]   (tests/support/mod.rs: `support::with_tty`)
"""
import os, pty, subprocess, sys, select, time

argv = sys.argv[1:]
on_stderr = bool(argv) and argv[0] == "--stderr"
if on_stderr:
    argv = argv[1:]
master, slave = pty.openpty()
if on_stderr:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)
else:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=sys.stderr)
os.close(slave)
chunks = []
deadline = time.time() + 60
while time.time() < deadline:
    r, _, _ = select.select([master], [], [], 0.1)
    if r:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    elif proc.poll() is not None:
        break
code = proc.wait(timeout=60)
sys.stdout.buffer.write(b"".join(chunks))
sys.exit(code)
