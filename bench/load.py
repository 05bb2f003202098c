"""Load: N concurrent clients against a running Glimpse for a bounded time.

    python bench/load.py [--url http://127.0.0.1:8000] [--clients 20] [--duration 60]

Start the server first, as `make demo` does. Each client opens a new HTTP connection per
request (as many browsers and scripts do; `--keep-alive` reuses one) and sends a mix of text, filtered, paginated, HTML-page, picture (a small generated PNG) and
"more like this" queries, back to back. Meanwhile a thread polls pg_stat_activity for the
server's database (this script's own connection not counted), so the report shows the
peak number of connections the web, workers and scheduler held. Loopback servers only:
this is a load generator, not something to point at other people's machines.
"""
import argparse
import http.client
import io
import ipaddress
import itertools
import json
import random
import socket
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from common import ROOT, percentile, table

WORDS = ["apple", "cat", "guitar", "car", "dog", "bird", "flower", "tree", "house", "boat", "music", "sun", "star", "fish", "person"]
# Share of each kind of request in the mix.
MIX = {"text": 4, "filtered": 2, "paginated": 2, "page": 1, "picture": 1, "like": 2}


@dataclass
class Tally:
    latencies: dict = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, milliseconds: float, error: str | None) -> None:
        with self.lock:
            self.latencies[kind].append(milliseconds)
            if error:
                self.errors[f"{kind}: {error}"] += 1

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return sum(len(values) for values in self.latencies.values()), sum(self.errors.values())


def loopback_target(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        sys.exit(f"load: {url!r} is not an http:// URL")
    port = parts.port or 80
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)}
    except socket.gaierror as error:
        sys.exit(f"load: cannot resolve {parts.hostname}: {error}")
    if not all(ipaddress.ip_address(address.split("%")[0]).is_loopback for address in addresses):
        sys.exit(f"load: {parts.hostname} is not this machine ({', '.join(sorted(addresses))}); only loopback servers are load-tested")
    return parts.hostname, port


def small_png() -> bytes:
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (96, 96), "white")
    draw = ImageDraw.Draw(picture)
    draw.ellipse((12, 18, 84, 90), fill=(200, 30, 30))
    draw.rectangle((44, 4, 52, 22), fill=(90, 60, 20))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def multipart(name: str, filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        f"Content-Type: image/png\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Client:
    def __init__(self, host: str, port: int, timeout: float, keep_alive: bool = False):
        self.host, self.port, self.timeout, self.keep_alive = host, port, timeout, keep_alive
        self.connection = None

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.connection.request(method, path, body=body, headers=headers or {})
            response = self.connection.getresponse()
            answer = response.status, response.read()
        except Exception:
            self.close()
            raise
        if not self.keep_alive:
            self.close()
        return answer

    def close(self) -> None:
        self.connection.close()
        self.connection = None


def catalog_sample(client: Client) -> tuple[list[int], list[str]]:
    """Image ids for "more like this" and categories for filters, from the server itself."""
    ids, categories = set(), set()
    for word in WORDS:
        try:
            status, body = client.request("GET", "/api/search?" + urlencode({"q": word, "mode": "keyword", "limit": 20}))
        except OSError as error:
            sys.exit(f"load: no answer from {client.host}:{client.port} ({error}); start the server first, e.g. make demo")
        if status != 200:
            sys.exit(f"load: the server answered {status} to a warm-up search: {body[:200]!r}")
        for result in json.loads(body)["results"]:
            ids.add(result["id"])
            if result["category"]:
                categories.add(result["category"])
    if not ids:
        sys.exit("load: the catalog is empty; import and embed the demo first (make demo)")
    return sorted(ids), sorted(categories)


def one_request(client: Client, kind: str, rng: random.Random, ids: list[int], categories: list[str], png: bytes) -> tuple[int, bytes]:
    word = rng.choice(WORDS)
    if kind == "text":
        return client.request("GET", "/api/search?" + urlencode({"q": word, "mode": rng.choice(["hybrid", "semantic", "keyword"])}))
    if kind == "filtered":
        return client.request("GET", "/api/search?" + urlencode({"q": word, "category": rng.choice(categories) if categories else ""}))
    if kind == "paginated":
        return client.request("GET", "/api/search?" + urlencode({"q": word, "limit": 10, "page": rng.randint(2, 5)}))
    if kind == "page":
        return client.request("GET", "/?" + urlencode({"q": word}))
    if kind == "like":
        return client.request("GET", "/api/search?" + urlencode({"like": rng.choice(ids)}))
    body, content_type = multipart("image", "query.png", png)
    return client.request("POST", "/api/search", body=body, headers={"Content-Type": content_type})


def run_client(number: int, host: str, port: int, deadline: float, tally: Tally, ids, categories, png, options) -> None:
    rng = random.Random(number)
    kinds = [kind for kind, share in MIX.items() for _ in range(share)]
    rng.shuffle(kinds)
    client = Client(host, port, options.timeout, keep_alive=options.keep_alive)
    for kind in itertools.cycle(kinds):
        if time.monotonic() >= deadline:
            return
        started = time.perf_counter()
        try:
            status, _ = one_request(client, kind, rng, ids, categories, png)
            error = None if status == 200 else f"HTTP {status}"
        except Exception as exception:  # every failure is counted by kind, none stops the client
            error = type(exception).__name__
        tally.add(kind, (time.perf_counter() - started) * 1000, error)


class ConnectionWatch(threading.Thread):
    """Polls pg_stat_activity for the server's database; `peak` is the most seen at once."""

    def __init__(self, database: dict, interval: float = 0.2):
        super().__init__(daemon=True)
        self.database, self.interval = database, interval
        self.current = self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        import psycopg

        settings = self.database
        with psycopg.connect(
            dbname=settings["NAME"], user=settings["USER"], password=settings["PASSWORD"] or None,
            host=settings["HOST"] or None, port=settings["PORT"] or None, autocommit=True,
        ) as connection:
            while not self.stopped.is_set():
                (self.current,) = connection.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [settings["NAME"]]
                ).fetchone()
                self.peak = max(self.peak, self.current)
                self.stopped.wait(self.interval)


def server_database() -> dict:
    """The database the server uses: the same settings module, so the same URL or embedded server."""
    sys.path.insert(0, str(ROOT))
    from config import settings

    return settings.DATABASES["default"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60, help="seconds")
    parser.add_argument("--timeout", type=float, default=60, help="seconds one request may take")
    parser.add_argument("--progress", type=float, default=5, help="seconds between progress lines")
    parser.add_argument("--keep-alive", action="store_true", help="reuse each client's HTTP connection (default: a new one per request)")
    options = parser.parse_args()
    if not (1 <= options.clients <= 500 and 0 < options.duration <= 3600):
        sys.exit("load: --clients must be 1..500 and --duration 0..3600 seconds")
    host, port = loopback_target(options.url)

    ids, categories = catalog_sample(Client(host, port, options.timeout))
    png = small_png()
    watch = ConnectionWatch(server_database())
    watch.start()
    tally = Tally()
    started = time.monotonic()
    deadline = started + options.duration
    threads = [
        threading.Thread(target=run_client, args=(number, host, port, deadline, tally, ids, categories, png, options), daemon=True)
        for number in range(options.clients)
    ]
    for thread in threads:
        thread.start()
    print(
        f"{options.clients} clients against {options.url} for {options.duration:g} s, "
        f"{'one connection each' if options.keep_alive else 'a new connection per request'} ({len(ids)} images, {len(categories)} categories)",
        flush=True,
    )
    while any(thread.is_alive() for thread in threads):
        time.sleep(min(options.progress, max(0.05, deadline + options.timeout - time.monotonic())))
        requests, errors = tally.counts()
        elapsed = time.monotonic() - started
        print(f"  {elapsed:5.0f} s  {requests:6d} requests ({requests / elapsed:5.1f}/s)  {errors} errors  "
              f"db connections {watch.current} (peak {watch.peak})", flush=True)
    elapsed = time.monotonic() - started
    watch.stopped.set()
    watch.join()

    rows = []
    everything = []
    for kind in MIX:
        samples = tally.latencies.get(kind, [])
        everything += samples
        failed = sum(count for name, count in tally.errors.items() if name.startswith(f"{kind}:"))
        if samples:
            rows.append([kind, len(samples), failed, f"{percentile(samples, 50):.0f}", f"{percentile(samples, 95):.0f}", f"{percentile(samples, 99):.0f}"])
    rows.append(["all", len(everything), sum(tally.errors.values()), *(f"{percentile(everything, q):.0f}" for q in (50, 95, 99))])
    print()
    print(table(["request", "requests", "errors", "p50 ms", "p95 ms", "p99 ms"], rows))
    print()
    print(f"{len(everything)} requests in {elapsed:.1f} s ({len(everything) / elapsed:.1f}/s), "
          f"{sum(tally.errors.values())} errors, peak database connections {watch.peak}")
    for name, count in tally.errors.most_common():
        print(f"  {count:6d}  {name}")


if __name__ == "__main__":
    main()
