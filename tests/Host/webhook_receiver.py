#!/usr/bin/env python3
"""A webhook receiver for tests/Host/Webhooks.Tests.ps1: listens on 127.0.0.1:PORT, appends each POST
(its X-WgHost-* headers and body) as one JSON line to LOG, and answers 500 to the first attempt of
every delivery when FAIL_FIRST=1 (so the host must retry). While the file HOLD exists, it keeps the
request open before answering (at most 30 s), to show that the host does not wait for it."""
import json, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, log = int(sys.argv[1]), sys.argv[2]
hold = os.environ.get("HOLD", "")
fail_first = os.environ.get("FAIL_FIRST") == "1"

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        record = {k: v for k, v in self.headers.items() if k.lower().startswith("x-wghost-")}
        record["body"] = body.decode("utf-8")
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        deadline = time.monotonic() + 30
        while hold and os.path.exists(hold) and time.monotonic() < deadline:
            time.sleep(0.05)
        status = 500 if fail_first and self.headers.get("X-WgHost-Attempt") == "1" else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
