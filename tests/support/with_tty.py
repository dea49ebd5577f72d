#!/usr/bin/env python3
"""Runs a command with its stdout on a pseudo-terminal, as if a person ran it in a shell.

Prints the command's stdout (what would have reached the screen) to our stdout, passes stderr
through, and exits with the command's exit code. Usage: with_tty.py CMD [ARGS...]
"""
import os, pty, subprocess, sys, select, time

master, slave = pty.openpty()
proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=slave, stderr=sys.stderr)
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
