#!/usr/bin/env python3
"""Urgent latency under load, for bench/vs-postfix.sh --urgent-probe.

  urgent-probe.py send --port P --from A --to B --ids FILE --stop FILE [--every S]
      sends one hỏa tốc document at a time to congvan's relay listener (127.0.0.1:P) every
      S seconds until FILE --stop exists, and writes each one's Message-ID to --ids.
  urgent-probe.py analyse --ids FILE LOG...
      reads congvan's log (plain text or JSON lines) and prints, for those documents, the
      time from acceptance ("accepted", logged when the 250 is given) to the upstream's
      reply ("left the queue"): count, p50, p99 and max in milliseconds.
"""
import argparse
import datetime
import json
import os
import re
import smtplib
import sys
import time
import uuid


def send(a):
    ids = open(a.ids, "a", buffering=1)
    smtp = None
    while not os.path.exists(a.stop):
        started = time.monotonic()
        mid = f"<probe-{uuid.uuid4().hex}@bench.gov.vn>"
        msg = (
            f"From: {a.sender}\r\nTo: {a.to}\r\nSubject: [HOA TOC] probe\r\n"
            f"Message-ID: {mid}\r\nX-Congvan-Urgency: hoa-toc\r\n\r\nKhan cap.\r\n"
        )
        try:
            if smtp is None:
                smtp = smtplib.SMTP("127.0.0.1", a.port, timeout=30)
                smtp.ehlo("probe.bench.gov.vn")
            smtp.sendmail(a.sender, [a.to], msg.encode())
            ids.write(mid + "\n")
        except (smtplib.SMTPException, OSError) as e:
            print(f"urgent-probe: {e}", file=sys.stderr)
            smtp = None
        time.sleep(max(0.0, a.every - (time.monotonic() - started)))
    if smtp is not None:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass


TS = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z")


def stamp(text):
    whole, _, frac = text.partition(".")
    t = datetime.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc
    )
    return t.timestamp() + (float("0." + frac) if frac else 0.0)


def events(path):
    """(time, message text, fields) for each log line."""
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.strip()
        if line.startswith("{"):
            try:
                j = json.loads(line)
            except ValueError:
                continue
            ts = j.get("timestamp", "").rstrip("Z")
            if not ts:
                continue
            yield stamp(ts), j.get("message", ""), {k: str(v) for k, v in j.items()}
            continue
        m = TS.match(line)
        if not m:
            continue
        # TIMESTAMP LEVEL [span{...}:] message key=value ...
        rest = re.sub(r"^\S+\s+[A-Z]+\s+", "", line)
        rest = re.sub(r"^\w+\{[^}]*\}: ", "", rest)
        text = re.split(r" \w+=", rest, maxsplit=1)[0]
        fields = dict(re.findall(r"(\w+)=(\"[^\"]*\"|\S+)", rest))
        fields = {k: v.strip('"') for k, v in fields.items()}
        yield stamp(m.group(1)), text, fields


def analyse(a):
    wanted = {l.strip() for l in open(a.ids) if l.strip()}
    accepted, left = {}, {}
    for path in a.logs:
        for t, text, f in events(path):
            qid = f.get("queue_id")
            if not qid:
                continue
            if text == "accepted" and f.get("message_id") in wanted:
                accepted[qid] = t
            elif text == "left the queue":
                left.setdefault(qid, t)
    lat = sorted((left[q] - t) * 1000 for q, t in accepted.items() if q in left)
    if not lat:
        print(f"urgent: none measured ({len(wanted)} sent, {len(accepted)} accepted)")
        return
    def pct(p):
        return lat[min(len(lat) - 1, int(round(p / 100 * (len(lat) - 1))))]
    print(
        f"urgent: {len(lat)} of {len(wanted)} measured, 250 -> upstream p50 {pct(50):.1f} ms"
        f" p99 {pct(99):.1f} ms max {lat[-1]:.1f} ms"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--from", dest="sender", required=True)
    s.add_argument("--to", required=True)
    s.add_argument("--ids", required=True)
    s.add_argument("--stop", required=True)
    s.add_argument("--every", type=float, default=0.1)
    s = sub.add_parser("analyse")
    s.add_argument("--ids", required=True)
    s.add_argument("logs", nargs="+")
    a = p.parse_args()
    send(a) if a.cmd == "send" else analyse(a)


if __name__ == "__main__":
    main()
