# Runs a command on a pseudo-terminal, answers its two password prompts with
# $PW1 and $PW2, and prints everything the terminal showed (used by user_test.ts
# to check that a typed password is read without echo).
import os
import pty
import select
import sys
import time

pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])

seen = b""


def read_until(marker, limit=120):
    global seen
    end = time.time() + limit
    while marker not in seen:
        ready, _, _ = select.select([fd], [], [], max(0, end - time.time()))
        if not ready:
            sys.exit("drive_tty: timeout waiting for %r; got %r" % (marker, seen))
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            sys.exit("drive_tty: end of output waiting for %r; got %r" % (marker, seen))
        seen += data


read_until(b"Password: ")
os.write(fd, os.environ["PW1"].encode() + b"\r")
read_until(b"Password again: ")
os.write(fd, os.environ["PW2"].encode() + b"\r")
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    seen += data
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
