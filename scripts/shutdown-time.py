#!/usr/bin/env python3
"""How long the daemon takes from SIGTERM to exit, in the cases an operator meets: nothing open,
a WebSocket client that answers the close frame and one that never does, an SSE client, an
OpenTelemetry collector that takes the connection and never answers, three linked fake
gateways. One daemon per case on a fresh SQLite state; prints milliseconds.

    scripts/shutdown-time.py [case ...]      (GS_BIN: the binary, default target/debug)
"""
import os, socket, subprocess, sys, tempfile, time, threading, json, urllib.request
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GS_BIN", os.path.join(ROOT, "target/debug/gateway-supervisor"))
FAKE = os.path.join(os.path.dirname(BIN), "fake-gateway")
def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def run(case):
    d = tempfile.mkdtemp(); os.mkdir(d + "/state", 0o700)
    port = free()
    env = dict(os.environ, GATEWAY_SUPERVISOR__STATE__DIR=d + "/state", GATEWAY_SUPERVISOR__SERVER__BIND=f"127.0.0.1:{port}")
    hold = None
    if case == "collector":
        hold = socket.socket(); hold.bind(("127.0.0.1", 0)); hold.listen(16)
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{hold.getsockname()[1]}"
    p = subprocess.Popen([BIN, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=open(d + "/log", "w"))
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1); break
        except Exception: time.sleep(0.05)
    key = open(d + "/state/admin.key").read().strip()
    clients = []
    if case in ("ws", "ws-silent"):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall((f"GET /api/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nx-api-key: {key}\r\n\r\n").encode())
        print("  ws:", c.recv(200).split(b"\r\n")[0]); clients.append(c)
        if case == "ws":
            def answer(c=c):
                while True:
                    data = c.recv(65536)
                    if not data: return
                    if b"\x88" in data:  # a close frame: answer it as a browser does, then close
                        c.sendall(bytes([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE9 ^ 2])); c.close(); return
            threading.Thread(target=answer, daemon=True).start()
    if case == "sse":
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall((f"GET /api/events HTTP/1.1\r\nHost: x\r\nx-api-key: {key}\r\n\r\n").encode())
        print("  sse:", c.recv(200).split(b"\r\n")[0]); clients.append(c)
    if case == "gateways":
        fk = subprocess.Popen([FAKE, "--count", "3", "--base-port", "0", "--token", "t"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ports = []
        while True:
            line = fk.stdout.readline()
            if line.startswith("port "): ports.append(int(line.split()[1]))
            if line.startswith("ready"): break
        for i, pt in enumerate(ports):
            body = json.dumps({"name": f"g{i}", "host": "127.0.0.1", "port": pt, "token": "t"}).encode()
            urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/gateways", data=body, headers={"x-api-key": key, "content-type": "application/json"}), timeout=5).read()
        for _ in range(100):
            g = json.load(urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/gateways", headers={"x-api-key": key})))
            if sum(x["status"] == "online" for x in g["gateways"]) == 3: break
            time.sleep(0.1)
        print("  online:", sum(x["status"] == "online" for x in g["gateways"]))
    if case == "collector":
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/api/gateways", headers={"x-api-key": key}), timeout=5).read()
    t = time.monotonic(); p.terminate(); p.wait(30); took = time.monotonic() - t
    print(f"{case}: exit {p.returncode} after {took*1000:.0f} ms")
    if case == "gateways": fk.kill()
for case in sys.argv[1:] or ["none", "ws", "ws-silent", "sse", "collector", "gateways"]:
    run(case)
