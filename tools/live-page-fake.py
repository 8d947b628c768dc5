#!/usr/bin/env python3
"""A stand-in for a guest's stats endpoint, to test the live page on the host (tools/live-page-check.sh --fake):

    live-page-fake.py PORT LIVE_HTML

serves LIVE_HTML at / and /live, and at /stats a JSON document shaped as `sirocco::metrics::json()` writes it
(uptime_ms, build, heap, profile, tasks, boot_steps_us, vifs, disks, app), whose counters grow with real time as
a busy httpd's would (about 300 requests and 1,200 packets a second, latencies of a few hundred microseconds).
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

START = time.monotonic()
BOUNDS = [25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000]
# Where each request's latency falls, cumulative share by bucket.
SHARES = [0, 0.01, 0.05, 0.35, 0.8, 0.95, 0.99, 1, 1, 1, 1, 1, 1, 1, 1, 1]


def document():
    t = time.monotonic() - START
    ns = int(t * 1e9)
    requests = int(300 * t)
    packets = int(1200 * t)
    return {
        "uptime_ms": ns // 1_000_000,
        "build": {"version": "0.1.0", "app": "httpd", "mode": "PV", "xen": "4.17.7"},
        "heap": {"size": 31_000_000, "used": 400_000 + int(50_000 * (1 + (t % 10) / 10)), "free": 30_500_000},
        "profile": {"uptime_ns": ns, "idle_ns": int(ns * 0.82), "wakeups": int(900 * t), "net_poll_ns": int(ns * 0.085),
                    "net_polls": int(1000 * t), "other_ns": int(ns * 0.095), "kicks": int(700 * t)},
        "tasks": {"alive": 5, "spawned": 12 + requests // 100},
        "logs": {"ring_bytes": 2048, "ring_records": 20},
        "boot_steps_us": {"wall_start_us": 1_764_950_000_000_000, "xenstore": 812, "listen": 2100},
        "vifs": [{"vif": "0", "ipv4": "10.0.2.15/24", "mac": "00:16:3e:00:00:01", "rx_packets": packets,
                  "rx_bytes": packets * 400, "tx_packets": packets, "tx_bytes": packets * 900,
                  "tcp": {"listen": 1, "established": 4, "time_wait": 0, "closed": 0}}],
        "app": {
            "http_requests_total": requests,
            "http_request_duration_seconds": {
                "unit": "us", "count": requests, "sum": requests * 420,
                "buckets": [[b, int(requests * s)] for b, s in zip(BOUNDS, SHARES)],
            },
            "http_budget": {"limit": 15_000_000, "used": 65_536, "peak": 262_144, "refusals": 0},
        },
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = self.path.split("?")[0]
        status = 200
        if path in ("/", "/live"):
            body, ctype = PAGE, "text/html; charset=utf-8"
        elif path == "/stats":
            body, ctype = json.dumps(document(), separators=(",", ":")).encode(), "application/json"
        else:
            status, body, ctype = 404, b"not found\n", "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port, page = int(sys.argv[1]), sys.argv[2]
    with open(page, "rb") as f:
        PAGE = f.read()
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
