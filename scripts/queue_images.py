"""Queue one Animate124 workflow per image on a running ComfyUI through its HTTP API, and wait for each.

For every image: upload it (POST /upload/image), put its name into the workflow's LoadImage node, give the run its
own checkpoint folder and file prefix (the image's stem), submit (POST /prompt) and poll GET /history/<id> until it
finished. Only the standard library is used.

Examples:
    python scripts/queue_images.py photos/*.png
    python scripts/queue_images.py --server http://127.0.0.1:8188 --workflow workflows/animate124_full_api.json \\
        --set 8.preset=fast --set 9.prompt="a fox is jumping" fox.png

Exit status: 0 when every prompt succeeded, 1 otherwise (each failure is printed with ComfyUI's message).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

DEFAULT_WORKFLOW = Path(__file__).resolve().parents[1] / "workflows" / "animate124_full_api.json"
#: Inputs that name a run's files: set to the image's stem so runs never overwrite each other.
RUN_NAME_INPUTS = ("run_name", "filename_prefix")


def request(server: str, path: str, data: bytes | None = None, headers: dict | None = None) -> dict:
    req = urllib.request.Request(server.rstrip("/") + path, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            body = r.read()
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"{path}: HTTP {err.code}: {err.read().decode(errors='replace')[:2000]}") from None
    return json.loads(body) if body else {}


def upload(server: str, image: Path) -> str:
    """POST /upload/image (multipart); returns the name ComfyUI stored it under (in its input folder)."""
    boundary = uuid.uuid4().hex
    mime = mimetypes.guess_type(image.name)[0] or "application/octet-stream"
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{image.name}"\r\n'.encode(),
            f"Content-Type: {mime}\r\n\r\n".encode(),
            image.read_bytes(),
            b"\r\n",
            f'--{boundary}\r\nContent-Disposition: form-data; name="overwrite"\r\n\r\ntrue\r\n'.encode(),
            f"--{boundary}--\r\n".encode(),
        ]
    )
    out = request(server, "/upload/image", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return f"{out['subfolder']}/{out['name']}" if out.get("subfolder") else out["name"]


def apply_settings(prompt: dict, settings: list[str]) -> None:
    """`node.input=value` (value parsed as JSON when possible, else kept as a string)."""
    for item in settings:
        target, sep, raw = item.partition("=")
        node, dot, name = target.partition(".")
        if not sep or not dot or node not in prompt or name not in prompt[node]["inputs"]:
            raise SystemExit(f"--set {item!r}: expected <node id>.<input>=<value> naming an input of the workflow")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        prompt[node]["inputs"][name] = value


def prepare(workflow: dict, image_name: str, stem: str, settings: list[str]) -> dict:
    prompt = json.loads(json.dumps(workflow))
    loaders = [k for k, v in prompt.items() if v["class_type"] == "LoadImage"]
    if len(loaders) != 1:
        raise SystemExit(f"The workflow has {len(loaders)} LoadImage nodes; it needs exactly one to feed the images.")
    prompt[loaders[0]]["inputs"]["image"] = image_name
    for entry in prompt.values():
        for key in RUN_NAME_INPUTS:
            if key in entry["inputs"] and isinstance(entry["inputs"][key], str):
                entry["inputs"][key] = stem
    apply_settings(prompt, settings)
    return prompt


def wait(server: str, prompt_id: str, poll: float, timeout: float) -> dict:
    end = time.time() + timeout
    while time.time() < end:
        entry = request(server, f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("status_str"):
            return entry
        time.sleep(poll)
    raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", type=Path, help="Reference images (RGBA with alpha works best).")
    parser.add_argument("--server", default="http://127.0.0.1:8188", help="ComfyUI address.")
    parser.add_argument("--workflow", type=Path, default=DEFAULT_WORKFLOW, help="An API-format workflow (*_api.json).")
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="NODE.INPUT=VALUE",
        help="Override an input of every queued prompt (repeatable).",
    )
    parser.add_argument("--poll", type=float, default=5.0, help="Seconds between /history polls.")
    parser.add_argument("--timeout", type=float, default=24 * 3600, help="Seconds to wait for one prompt.")
    args = parser.parse_args(argv)
    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        raise SystemExit(f"Images not found: {', '.join(missing)}")
    workflow = json.loads(args.workflow.read_text())
    failures = 0
    for image in args.images:
        prompt = prepare(workflow, upload(args.server, image), image.stem, args.settings)
        queued = request(
            args.server,
            "/prompt",
            json.dumps({"prompt": prompt, "client_id": uuid.uuid4().hex}).encode(),
            {"Content-Type": "application/json"},
        )
        print(f"{image}: queued as {queued['prompt_id']}", flush=True)
        entry = wait(args.server, queued["prompt_id"], args.poll, args.timeout)
        status = entry["status"]["status_str"]
        files = [
            f"{i['subfolder']}/{i['filename']}" for out in entry["outputs"].values() for i in out.get("images", [])
        ]
        if status == "success":
            print(f"{image}: done; files: {', '.join(files) or '(none)'}", flush=True)
        else:
            failures += 1
            errors = [
                m[1].get("exception_message", "") for m in entry["status"]["messages"] if m[0] == "execution_error"
            ]
            print(f"{image}: {status}: {' '.join(errors) or entry['status']['messages'][-1:]}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
