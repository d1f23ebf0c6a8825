"""Start a MultiWorkerMirroredStrategy job's workers on this machine, each with its own
TF_CONFIG on a free loopback port, and wait for them all (or stop them all).

    python launch_workers.py --workers 2 multi_worker.py --steps 20 --out checkpoint

On several machines, give each worker the same cluster (every host:port) and its own index.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time


def free_loopback_ports(count: int) -> list[int]:
    """Ports the kernel hands out for 127.0.0.1 (all held open until each is chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})


def launch(script: list[str], workers: int, timeout: float) -> int:
    """Run `script` once per worker; the first failure or the timeout stops them all."""
    ports = free_loopback_ports(workers)
    processes = [
        subprocess.Popen(
            [sys.executable, *script], env={**os.environ, "TF_CONFIG": tf_config(ports, index)}
        )
        for index in range(workers)
    ]
    deadline = time.monotonic() + timeout
    try:
        while any(p.poll() is None for p in processes):
            if time.monotonic() > deadline or any(p.returncode for p in processes):
                break
            time.sleep(0.2)
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    codes = [p.returncode for p in processes]
    print(f"worker exit codes: {codes}", file=sys.stderr)
    return next((code for code in codes if code), 0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600, help="seconds before all stop")
    parser.add_argument("script", nargs=argparse.REMAINDER, help="the worker and its arguments")
    args = parser.parse_args()
    sys.exit(launch(args.script, args.workers, args.timeout))
