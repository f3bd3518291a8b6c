"""Hold one TLS session open across a certificate reload and compare certificates.

Protocol on stdin/stdout: prints the SHA-256 of the first session's certificate, waits for a
line on stdin (the reload happened), then prints the certificate of a new session and the
reply of the first session to NOOP.
usage: peer_cert.py HOST PORT
"""
import hashlib
import json
import smtplib
import ssl
import sys

host, port = sys.argv[1], int(sys.argv[2])
ctx = ssl._create_unverified_context()


def fingerprint(s):
    return hashlib.sha256(s.sock.getpeercert(binary_form=True)).hexdigest()


old = smtplib.SMTP_SSL(host, port, context=ctx)
old.ehlo("client.example")
print(json.dumps({"old": fingerprint(old)}), flush=True)
sys.stdin.readline()
new = smtplib.SMTP_SSL(host, port, context=ctx)
new.ehlo("client.example")
result = {"new": fingerprint(new), "old_noop": old.noop()[0], "old_again": fingerprint(old)}
new.quit()
old.quit()
print(json.dumps(result), flush=True)
