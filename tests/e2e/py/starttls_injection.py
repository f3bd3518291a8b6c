"""STARTTLS command injection (CVE-2011-0411 class, RFC 3207 §4.2): send
"STARTTLS\r\nNOOP\r\n" in one write, do the TLS handshake, then EHLO. The NOOP was sent in
clear text before the handshake and must never be answered after it.

Prints JSON: {"starttls": "<reply>", "after_tls": ["<first reply lines>"], "noop": "<reply>",
"quit": "<reply>", "error": null | "..."}
"""
import json
import socket
import ssl
import sys


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise EOFError("connection closed")
        line = line.decode("utf-8", "replace").rstrip("\r\n")
        lines.append(line)
        if len(line) < 4 or line[3] == " ":
            return lines


def main():
    port = int(sys.argv[1])
    out = {"starttls": None, "after_tls": None, "noop": None, "quit": None, "error": None}
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        f = sock.makefile("rb")
        read_reply(f)  # greeting
        sock.sendall(b"EHLO client.example.test\r\n")
        read_reply(f)
        sock.sendall(b"STARTTLS\r\nNOOP\r\n")  # one write: the NOOP is the injection
        out["starttls"] = "\n".join(read_reply(f))
        # The NOOP's reply must not be waiting in clear text either: f must hold nothing more.
        ctx = ssl._create_unverified_context()
        tls = ctx.wrap_socket(sock, server_hostname="localhost")
        tf = tls.makefile("rb")
        tls.sendall(b"EHLO client.example.test\r\n")
        out["after_tls"] = read_reply(tf)
        tls.sendall(b"NOOP\r\n")
        out["noop"] = "\n".join(read_reply(tf))
        tls.sendall(b"QUIT\r\n")
        out["quit"] = "\n".join(read_reply(tf))
        tls.close()
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
    json.dump(out, sys.stdout)


main()
