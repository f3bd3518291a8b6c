"""The mail clients of the federation scenario, on Python's smtplib (a client nobody here wrote).

  submit: a user's submission: EHLO, STARTTLS (the server certificate checked against --cafile),
          AUTH (smtplib.login), MAIL, RCPT..., DATA. With --check-maildir, the moment the DATA
          reply is in, before QUIT or anything else, it counts the files of that Maildir (new/
          and cur/) whose Subject is --check-subject: the proof that a token delivery
          reached the other server before this one answered DATA.
  lmtp:   an MTA handing a message to the LMTP listener (smtplib.LMTP): LHLO, MAIL, RCPT...,
          DATA, and one reply per accepted recipient (RFC 2033 section 4.2).

Prints one JSON object: {"mail": [code, text], "rcpt": [[addr, code, text]...],
"data": [[code, text]...], "checked": n | null, "error": null | "..."}.
"""
import argparse
import email.parser
import email.policy
import json
import os
import smtplib
import ssl
import sys


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def count_subject(maildir, subject):
    n = 0
    for sub in ("new", "cur"):
        folder = os.path.join(maildir, sub)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            continue
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                head = email.parser.BytesHeaderParser(policy=email.policy.compat32).parse(f)
            if head.get("Subject", "").strip() == subject:
                n += 1
    return n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["submit", "lmtp"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cafile")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--from", dest="sender", required=True)
    p.add_argument("--to", action="append", default=[])
    p.add_argument("--message", required=True, help="file with the raw message (CRLF line ends)")
    p.add_argument("--check-maildir")
    p.add_argument("--check-subject")
    a = p.parse_args()

    out = {"mail": None, "rcpt": [], "data": [], "checked": None, "error": None}
    with open(a.message, "rb") as f:
        body = f.read()
    try:
        if a.mode == "submit":
            ctx = ssl.create_default_context(cafile=a.cafile)
            # The test connects to 127.0.0.1; the chain is still checked against the test CA.
            ctx.check_hostname = False
            s = smtplib.SMTP("127.0.0.1", a.port, timeout=30)
            s.ehlo("client.test")
            s.starttls(context=ctx)
            s.ehlo("client.test")
            s.login(a.user, a.password)
        else:
            s = smtplib.LMTP("127.0.0.1", a.port, timeout=30)
            s.ehlo("mta.test")  # LMTP.ehlo sends LHLO
        code, msg = s.mail(a.sender)
        out["mail"] = [code, text(msg)]
        accepted = 0
        for rcpt in a.to:
            code, msg = s.rcpt(rcpt)
            out["rcpt"].append([rcpt, code, text(msg)])
            accepted += code in (250, 251)
        if accepted:
            code, msg = s.data(body)
            if a.check_maildir:
                out["checked"] = count_subject(a.check_maildir, a.check_subject)
            out["data"].append([code, text(msg)])
            if a.mode == "lmtp":
                for _ in range(accepted - 1):
                    code, msg = s.getreply()
                    out["data"].append([code, text(msg)])
        s.quit()
    except smtplib.SMTPResponseException as e:
        out["error"] = f"{e.smtp_code} {text(e.smtp_error)}"
    except Exception as e:  # reported; the test decides
        out["error"] = f"{type(e).__name__}: {e}"
    json.dump(out, sys.stdout)


main()
