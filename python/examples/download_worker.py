#!/usr/bin/env python3
"""A worker for a kind of your own: "fetch" tasks, whose argument is a URL.
It saves the body under --out and returns {"url", "file", "bytes", "sha256"}.
A 4xx answer fails the task for good; a network error is retried.

    TASKQ_AUTHKEY=abc python3 download_worker.py 127.0.0.1:5000 --out pages --jobs 8
    # and from any producer:
    #   taskq.connect("127.0.0.1:5000", b"abc").queue("tasks").put("fetch", "http://...")
"""
import argparse, hashlib, os, sys, urllib.error, urllib.parse, urllib.request
import taskq

p = argparse.ArgumentParser()
p.add_argument("server", nargs="?", default="127.0.0.1:5000")
p.add_argument("--out", default="downloads")
p.add_argument("--jobs", type=int, default=8)  # threads: downloads wait on the network
a = p.parse_args()
os.makedirs(a.out, exist_ok=True)
worker = taskq.Worker(a.server, os.environ.get("TASKQ_AUTHKEY", "abc").encode(), jobs=a.jobs)


@worker.handler("fetch")
def fetch(url):
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise taskq.TaskFailed(f"not an http(s) URL: {url!r}", retry=False)
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body = r.read(100 * 1024 * 1024 + 1)
    except urllib.error.HTTPError as e:
        raise taskq.TaskFailed(f"{url}: HTTP {e.code}", retry=e.code >= 500) from None
    if len(body) > 100 * 1024 * 1024:
        raise taskq.TaskFailed(f"{url}: larger than 100 MiB", retry=False)
    digest = hashlib.sha256(body).hexdigest()
    path = os.path.join(a.out, digest[:16] + "-" + (os.path.basename(
        urllib.parse.urlsplit(url).path) or "index.html"))
    with open(path, "wb") as f:
        f.write(body)
    print(f"fetched {url} ({len(body)} bytes)", flush=True)
    return {"url": url, "file": path, "bytes": len(body), "sha256": digest}


sys.exit(worker.run())
