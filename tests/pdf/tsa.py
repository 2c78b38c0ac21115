#!/usr/bin/env python3
"""A time-stamping authority (RFC 3161 over HTTP) for congvan's tests: each POSTed
TimeStampReq is answered by `openssl ts -reply` with the configuration the test wrote (its
TSA certificate and key, issued by the test CA). Never used by the product.

  tsa.py CONFIG [--port N]
      serves on 127.0.0.1 (port N, or one the system picks), prints the port on the first
      line of stdout, and answers until killed
"""
import argparse
import http.server
import os
import subprocess
import sys
import tempfile


def handler(config):
    class Tsa(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            query = self.rfile.read(n)
            with tempfile.TemporaryDirectory() as d:
                q = os.path.join(d, "q.tsq")
                r = os.path.join(d, "r.tsr")
                with open(q, "wb") as f:
                    f.write(query)
                p = subprocess.run(
                    ["openssl", "ts", "-reply", "-config", config, "-queryfile", q, "-out", r],
                    capture_output=True,
                )
                if p.returncode != 0 or not os.path.exists(r):
                    body = p.stderr or b"openssl ts -reply failed"
                    self.send_response(500)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                with open(r, "rb") as f:
                    body = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):
            sys.stderr.write("tsa.py: " + (fmt % args) + "\n")

    return Tsa


def main():
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler(args.config))
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
