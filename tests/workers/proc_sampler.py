#!/usr/bin/env python3
"""Samples /proc/*/cmdline and /proc/*/environ of every process as often as it can,
looking for the needles given on stdin (one hex-encoded needle per line, then EOF),
until the file named by argv[1] exists. Prints one JSON line:
{"samples": N, "hits": [...], "seen": {command: count}}.
The needles travel on stdin so that they are not in this sampler's own argv."""
import json
import os
import sys

needles = [bytes.fromhex(line.strip()) for line in sys.stdin if line.strip()]
stop_file = sys.argv[1]
watch = set(sys.argv[2].split(",")) if len(sys.argv) > 2 else set()
me = os.getpid()
samples = 0
hits = []
seen = {}
while not os.path.exists(stop_file):
    samples += 1
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == me:
            continue
        for part in ("cmdline", "environ"):
            try:
                with open(f"/proc/{pid}/{part}", "rb") as f:
                    data = f.read()
            except OSError:
                continue
            if part == "cmdline" and data:
                name = os.path.basename(data.split(b"\0", 1)[0]).decode("utf-8", "replace")
                if name in watch:
                    seen.setdefault(name, set()).add(pid)
            for n in needles:
                if n and n in data:
                    hits.append({"pid": pid, "part": part})
print(json.dumps({"samples": samples, "hits": hits, "seen": {k: len(v) for k, v in seen.items()}}))
