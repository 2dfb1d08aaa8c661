#!/usr/bin/env python3
"""Writes text-order.txt: the `toolmesh` binary's functions a serving gateway runs (relayed
`tools/call`s, a metrics scrape, the periodic upkeep and health checks), then (between two
markers) those only start-up runs, for the linker to lay out together (build.rs turns the
names into section patterns without the build's crate hashes). Run it again when the
gateway's call path changes much; names no build has any more match nothing, so a stale
list costs memory, never correctness.

Needs valgrind (callgrind counts every function that runs, not a sample) and release
builds: `cargo build --release -p toolmesh-cli -p toolmesh-testkit`, then from the
workspace root: `python3 crates/cli/link/text-order.py` (`--union` keeps the tree's list
and adds what this run finds). Loopback ports 18001, 18383;
two gateways in turn, unpinned and on CPU 1 (`taskset`).
"""

import asyncio, glob, http.client, json, os, re, shutil, signal, subprocess, sys, tempfile, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BIN = os.path.join(ROOT, "target", "release", "toolmesh")
FIXTURE = os.path.join(ROOT, "target", "release", "toolmesh-fixture")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "text-order.txt")
FIXTURE_ADDR, GATEWAY_PORT = "127.0.0.1:18001", 18383
MARKERS = ("toolmesh_startup_text_begin", "toolmesh_startup_text_end")


def session(port):
    """Initializes an MCP session over streamable HTTP; its id."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "order", "version": "1"}}}
    c.request("POST", "/mcp", json.dumps(init), h)
    r = c.getresponse()
    sid = r.getheader("mcp-session-id")
    r.read()
    h["mcp-session-id"] = sid
    c.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), h)
    c.getresponse().read()
    return sid


async def calls(port, sid, inflight, total):
    """`total` echo calls, `inflight` at a time, each worker on its keep-alive connection."""
    async def worker(n):
        rd, wr = await asyncio.open_connection("127.0.0.1", port)
        for k in range(total // inflight):
            body = json.dumps({"jsonrpc": "2.0", "id": n * 100000 + k, "method": "tools/call", "params": {
                "name": "fixture__echo", "arguments": {"message": "order"},
                # As rmcp's client (and toolmesh's) sends every call.
                "_meta": {"progressToken": n * 100000 + k}}}).encode()
            wr.write(("POST /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                      "accept: application/json, text/event-stream\r\nmcp-session-id: %s\r\n"
                      "mcp-protocol-version: 2025-06-18\r\ncontent-length: %d\r\n\r\n" % (sid, len(body))).encode() + body)
            await wr.drain()
            head = await rd.readuntil(b"\r\n\r\n")
            length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if length:
                await rd.readexactly(length[0])
            else:
                while (size := int((await rd.readuntil(b"\r\n")).strip(), 16)) != 0:
                    await rd.readexactly(size + 2)
                await rd.readexactly(2)
        wr.close()
    await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(inflight))), 300)


def functions(path, names):
    """Functions of the binary with cost in one callgrind dump; `names` carries the
    dump's name compression across files."""
    ran, current, in_binary, after_calls = set(), None, False, False
    for line in open(path, errors="replace"):
        m = re.match(r"^(c?)(ob|fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if m:
            called, kind, key, name = m.groups()
            if name:
                names[kind, key] = name
            if not called:
                if kind == "ob":
                    in_binary = names.get(("ob", key), "").endswith("/toolmesh")
                else:
                    current = names.get(("fn", key)) if in_binary else None
        elif current and line[:1] in "0123456789+-*" and not after_calls:
            ran.add(re.sub(r"'\d+$", "", current))
        after_calls = line.startswith("calls=")
    return ran


def profile(cpus):
    """Start-up's and serving's functions of one gateway, on `cpus` (`taskset` list) or
    unpinned."""
    work = tempfile.mkdtemp(prefix="text-order-")
    config = os.path.join(work, "toolmesh.yaml")
    with open(config, "w") as f:
        f.write(f"servers:\n  fixture:\n    url: http://{FIXTURE_ADDR}/mcp\n")
    fixture = subprocess.Popen([FIXTURE, "--http", FIXTURE_ADDR], stdout=subprocess.DEVNULL)
    out = os.path.join(work, "callgrind.out")
    pin = ["taskset", "-c", cpus] if cpus else []
    gateway = subprocess.Popen(
        pin + ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}",
         BIN, "serve", "--listen", f"127.0.0.1:{GATEWAY_PORT}", "-q", "--config", config],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.time() + 120
        while "listening" not in gateway.stdout.readline():
            if time.time() > deadline or gateway.poll() is not None:
                sys.exit("the gateway did not start under valgrind")
        time.sleep(2)  # start-up's last tasks (health checks) before the first dump
        subprocess.run(["callgrind_control", "-d", "start", str(gateway.pid)], check=True, timeout=60,
                       stdout=subprocess.DEVNULL)
        sid = session(GATEWAY_PORT)
        asyncio.run(calls(GATEWAY_PORT, sid, 1, 300))
        asyncio.run(calls(GATEWAY_PORT, sid, 32, 1600))
        # What a serving gateway also runs: a scrape, the metrics upkeep (5 s) and the
        # health checks (30 s); left out, each would map a 64 KiB window of its own.
        scrape = http.client.HTTPConnection("127.0.0.1", GATEWAY_PORT, timeout=30)
        scrape.request("GET", "/metrics")
        scrape.getresponse().read()
        time.sleep(35)
        subprocess.run(["callgrind_control", "-d", "calls", str(gateway.pid)], check=True, timeout=60,
                       stdout=subprocess.DEVNULL)
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(timeout=60)
        fixture.kill()
        fixture.wait(timeout=10)
    dumps = sorted(glob.glob(out + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
    names = {}
    started, relayed = (functions(p, names) for p in dumps[:2])
    shutil.rmtree(work)
    return started, relayed


def union(relayed, started):
    """The tree's list widened by this run's functions (names compared without crate
    hashes): what an earlier run or a benchmark run found stays laid out."""
    key = lambda name: re.sub(r"Cs[0-9A-Za-z]{1,13}_", "Cs*_", name)
    names = [l.strip() for l in open(OUT) if l.strip()]
    begin, end = names.index(MARKERS[0]), names.index(MARKERS[1])
    hot = set(names[:begin])
    hot_keys = {key(n) for n in hot}
    added = {n for n in relayed if key(n) not in hot_keys}
    hot |= added
    hot_keys |= {key(n) for n in added}
    startup = {}
    for name in names[begin + 1:end] + sorted(started):
        startup.setdefault(key(name), name)
    return hot, {n for k, n in startup.items() if k not in hot_keys}


def main():
    for path in (BIN, FIXTURE):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: cargo build --release -p toolmesh-cli -p toolmesh-testkit")
    # On one CPU the gateway runs tokio's current-thread scheduler, on more the
    # multi-thread one: each spawned task's functions are other instances (the benchmark
    # pins the gateway to one CPU; users mostly do not).
    started, relayed = set(), set()
    for cpus in (None, "1"):
        s, r = profile(cpus)
        started |= s
        relayed |= r
    if "--union" in sys.argv[1:]:
        relayed, started = union(relayed, started)
    hot = sorted(relayed)
    startup = sorted(started - relayed)
    with open(OUT, "w") as f:
        f.write("\n".join(hot + [MARKERS[0]] + startup + [MARKERS[1]]) + "\n")
    print(f"{OUT}: {len(hot)} functions while serving, {len(startup)} only at start-up")


if __name__ == "__main__":
    main()
