"""The model endpoint's benchmark (scripts/bench --endpoint): mm serve's router beside llama-server called directly.

Usage: bench.py MM LLAMA_SERVER MODEL_A MODEL_B REPEAT
MM runs `mm` for the benchmark's own data folder (the caller's environment); MODEL_A and MODEL_B are GGUF files
already imported as local/<name>. Prints three tables' rows as JSON lines:
  overhead  the per-request time of a one-token completion through mm serve's /v1 and straight to llama-server,
            interleaved on kept-alive connections: medians and p99, and what the router adds
  cold      from the first request for a model nothing has loaded to its first streamed token, through mm serve,
            beside starting llama-server by hand and asking it (its own start), interleaved
  switch    three clients looping over two models with maxLoaded 1: answers, failures, swaps, latency
"""
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time

mm, llama, model_a, model_b, repeat = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
id_a, id_b = f"local/{os.path.basename(model_a)}", f"local/{os.path.basename(model_b)}"


def run(*args):
    return subprocess.run([mm, *args], check=True, capture_output=True, text=True).stdout


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    res = conn.getresponse()
    data = res.read()
    if res.status != 200:
        raise RuntimeError(f"{res.status}: {data[:300]!r}")
    return data


def first_token(host, port, path, body):
    """Seconds from sending a streamed request to its first content chunk."""
    conn = http.client.HTTPConnection(host, port, timeout=600)
    start = time.perf_counter()
    conn.request("POST", path, json.dumps({**body, "stream": True}), {"content-type": "application/json"})
    res = conn.getresponse()
    if res.status != 200:
        raise RuntimeError(f"{res.status}: {res.read()[:300]!r}")
    while True:
        line = res.fp.readline()
        if not line:
            raise RuntimeError("the stream ended before a token")
        if line.startswith(b"data: ") and b'"content"' in line and b'"content":null' not in line:
            elapsed = time.perf_counter() - start
            conn.close()
            return elapsed


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def start_llama(model, port):
    proc = subprocess.Popen(
        [llama, "--model", model, "--host", "127.0.0.1", "--port", str(port), "--ctx-size", "2048",
         "--n-gpu-layers", "0", "--parallel", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return proc


def stop(proc):
    """SIGTERM, then SIGKILL after 5 s (a llama-server may linger on a closed stream)."""
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_health(port, proc):
    while True:
        if proc.poll() is not None:
            raise RuntimeError("llama-server exited")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.005)


serve = subprocess.Popen([mm, "serve", "--json", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
router_port = int(json.loads(serve.stdout.readline())["listening"].rsplit(":", 1)[1])
chat = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 1}
try:
    # --- Per-request overhead, on warm models and kept-alive connections, interleaved. ---
    port = free_port()
    direct_proc = start_llama(model_a, port)
    wait_health(port, direct_proc)
    direct = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    router = http.client.HTTPConnection("127.0.0.1", router_port, timeout=60)
    for _ in range(20):  # warm both (the router loads the model on its first request)
        post(direct, "/v1/chat/completions", {**chat, "model": id_a})
        post(router, "/v1/chat/completions", {**chat, "model": id_a})
    times = {"direct": [], "router": []}
    for i in range(200 * repeat):
        for name in (("direct", "router") if i % 2 == 0 else ("router", "direct")):
            conn = direct if name == "direct" else router
            start = time.perf_counter()
            post(conn, "/v1/chat/completions", {**chat, "model": id_a})
            times[name].append(time.perf_counter() - start)
    stop(direct_proc)
    row = {"table": "overhead", "requests": len(times["direct"])}
    for name in ("direct", "router"):
        row[f"{name}_p50_ms"] = statistics.median(times[name]) * 1000
        row[f"{name}_p99_ms"] = percentile(times[name], 99) * 1000
    row["added_p50_ms"] = row["router_p50_ms"] - row["direct_p50_ms"]
    row["added_p99_ms"] = row["router_p99_ms"] - row["direct_p99_ms"]
    print(json.dumps(row), flush=True)

    # --- Cold start to the first token: mm serve loading on demand, beside llama-server's own start. ---
    cold = {"direct": [], "router": []}
    for i in range(repeat * 2):
        for name in (("direct", "router") if i % 2 == 0 else ("router", "direct")):
            if name == "router":
                run("unload")
                cold["router"].append(first_token("127.0.0.1", router_port, "/v1/chat/completions",
                                                  {**chat, "max_tokens": 4, "model": id_b}))
            else:
                port = free_port()
                start = time.perf_counter()
                proc = start_llama(model_b, port)
                wait_health(port, proc)
                waited = time.perf_counter() - start
                cold["direct"].append(waited + first_token("127.0.0.1", port, "/v1/chat/completions",
                                                           {**chat, "max_tokens": 4}))
                stop(proc)
    row = {"table": "cold", "runs": len(cold["router"]),
           "direct_ms": statistics.median(cold["direct"]) * 1000, "router_ms": statistics.median(cold["router"]) * 1000}
    row["added_ms"] = row["router_ms"] - row["direct_ms"]
    print(json.dumps(row), flush=True)

    # --- The switch: three clients looping over two models with one loaded at a time. ---
    run("unload")
    run("config", "set", "maxLoaded", "1")
    stop = time.time() + 10 * repeat
    results = []

    def client(n):
        conn = http.client.HTTPConnection("127.0.0.1", router_port, timeout=600)
        i = n
        while time.time() < stop:
            model = id_a if i % 2 == 0 else id_b
            start = time.perf_counter()
            try:
                data = json.loads(post(conn, "/v1/chat/completions", {**chat, "max_tokens": 4, "model": model}))
                results.append((data["model"] == model, time.perf_counter() - start))
            except Exception as e:  # noqa: BLE001 - every failure is counted
                results.append((False, time.perf_counter() - start))
                print(f"failed: {e}", file=sys.stderr)
                conn = http.client.HTTPConnection("127.0.0.1", router_port, timeout=600)
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies = [s for ok, s in results if ok]
    row = {"table": "switch", "seconds": 10 * repeat, "answered": len(latencies),
           "failed": sum(not ok for ok, _ in results),
           "p50_ms": statistics.median(latencies) * 1000, "p99_ms": percentile(latencies, 99) * 1000}
    print(json.dumps(row), flush=True)
finally:
    serve.terminate()
    serve.wait()
