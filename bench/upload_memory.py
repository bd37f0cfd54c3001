"""How much a web process grows while it receives a 50 MB upload (target: under 10 MB).

Starts a real gunicorn with one worker on embedded defaults in a temporary folder, uploads one
50 MB JPEG over HTTP, and reads the worker's resident memory (VmRSS) and peak (VmHWM) from /proc.
Run: .venv/bin/python bench/upload_memory.py
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from PIL import Image

TARGET_BYTES = 50 * 1024 * 1024


def big_jpeg() -> bytes:
    """Noise compresses badly: a noisy image at quality 100 reaches 50 MB at a modest pixel count."""
    side = 3600
    while True:
        image = Image.effect_noise((side, side), 120).convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=100, subsampling=0)
        if buffer.tell() >= TARGET_BYTES:
            return buffer.getvalue()
        side = int(side * 1.04)


def status_kb(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1))


def token(session: requests.Session, url: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', session.get(url).text).group(1)


def main() -> None:
    data = big_jpeg()
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVE_")}
        env.update(ARCHIVE_INSTANCE_DIR=f"{tmp}/instance", ARCHIVE_UPLOAD_DIR=f"{tmp}/uploads",
                   ARCHIVE_INDEX_DIR=f"{tmp}/index")
        init = subprocess.run([sys.executable, "-m", "archive", "init"], env=env, capture_output=True,
                              text=True, check=True)
        password = re.search(r"one-time password: (\S+)", init.stdout).group(1)
        port = 5731
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "1", "--bind",
                                   f"127.0.0.1:{port}", "archive:create_app()"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            web = requests.Session()
            for _ in range(100):
                try:
                    web.get(f"{base}/login", timeout=1)
                    break
                except requests.ConnectionError:
                    time.sleep(0.2)
            web.post(f"{base}/login", data={"username": "admin", "password": password,
                                            "csrf_token": token(web, f"{base}/login")})
            new = "bench-password-123"
            web.post(f"{base}/password", data={"password": new, "confirm": new,
                                               "csrf_token": token(web, f"{base}/password")})
            worker = int(subprocess.check_output(["pgrep", "-P", str(server.pid)]).split()[0])
            # Warm up every code path once with a small photo, so imports do not count as upload cost.
            small = io.BytesIO()
            Image.new("RGB", (64, 64), (1, 2, 3)).save(small, "JPEG")
            upload_token = token(web, f"{base}/upload")
            web.post(f"{base}/upload", files={"photos": ("warm.jpg", small.getvalue(), "image/jpeg")},
                     data={"association": "pasadena", "csrf_token": upload_token})
            # Log-in hashing (argon2 uses 64 MB) set the peak earlier: reset it, so it measures the upload alone.
            Path(f"/proc/{worker}/clear_refs").write_text("5")
            before_rss, before_peak = status_kb(worker, "VmRSS"), status_kb(worker, "VmHWM")
            started = time.perf_counter()
            response = web.post(f"{base}/upload", files={"photos": ("big.jpg", data, "image/jpeg")},
                                data={"association": "pasadena", "csrf_token": upload_token},
                                headers={"Accept": "application/json"})
            elapsed = time.perf_counter() - started
            after_rss, after_peak = status_kb(worker, "VmRSS"), status_kb(worker, "VmHWM")
        finally:
            server.terminate()
            server.wait(timeout=20)
    outcome = response.json()["results"][0]["outcome"]
    growth_mb = (after_peak - before_rss) / 1024
    print(f"upload of {len(data) / 1e6:.1f} MB: HTTP {response.status_code}, {outcome}, {elapsed:.2f} s")
    print(f"web worker RSS before {before_rss / 1024:.1f} MB, after {after_rss / 1024:.1f} MB, "
          f"peak before {before_peak / 1024:.1f} MB, peak after {after_peak / 1024:.1f} MB")
    print(f"peak growth during the upload: {growth_mb:.1f} MB (target <= 10 MB): "
          f"{'OK' if growth_mb <= 10 else 'OVER'}")


if __name__ == "__main__":
    main()
