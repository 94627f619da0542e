"""Queue one Animate124 workflow per image (or, with --mesh, per 3D model) on one or more running ComfyUI servers
through their HTTP API.

For every image: upload it (POST /upload/image) to the server that will run it, put its name into the workflow's
LoadImage node, give the run its own checkpoint folder and file prefix (the image's stem), submit (POST /prompt) and
poll GET /history/<id> until it finished. With --mesh the inputs are mesh files (.glb, .gltf, .obj, .ply, .stl):
each is uploaded to the server's input/3d and picked in the workflow's Animate Mesh node (default workflow:
animate124_animate_mesh_api.json), the same CSV recording the GLB each run wrote.

With several `--server`s each idle server takes the next image, the one with the shortest /queue first (other clients
may share a server). A failed image (error, interrupt, unreachable server) is retried on another server, resuming
every stage from the newest checkpoint that server can read (`output/animate124/checkpoints/<stem>/<stage>[_latest]
.safetensors`, found through GET /view): servers that share an output folder continue where the failed one stopped.
One CSV row per attempt: image, server, seconds, outputs, status, resume_from. Only the standard library is used.

Examples:
    python scripts/queue_images.py photos/*.png
    python scripts/queue_images.py --server http://127.0.0.1:8188 --server http://127.0.0.1:8189 \\
        --workflow workflows/animate124_full_api.json --set 8.preset=fast --csv runs.csv photos/*.png
    python scripts/queue_images.py --mesh --server http://127.0.0.1:8188 --server http://127.0.0.1:8189 \\
        --set 3.prompt="a robot is waving its arms" --csv meshes.csv models/*.glb

Exit status: 0 when every image succeeded, 1 otherwise (each failure is printed with ComfyUI's message).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import mimetypes
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
#: What is queued per input: the default workflow, the node (class, input) that takes the uploaded file, the folder
#: under ComfyUI's input folder it is uploaded to, and the file types accepted.
MODES = {
    "image": (WORKFLOWS / "animate124_full_api.json", ("LoadImage", "image"), "", None),
    "mesh": (
        WORKFLOWS / "animate124_animate_mesh_api.json",
        ("A124_AnimateMesh", "model_file"),
        "3d",
        (".glb", ".gltf", ".obj", ".ply", ".stl"),
    ),
}
#: Inputs that name a run's files: set to the image's stem so runs never overwrite each other.
RUN_NAME_INPUTS = ("run_name", "filename_prefix")
#: Stage nodes and the checkpoint names they write (output/animate124/checkpoints/<run_name>/<stage>*.safetensors).
STAGES = {"A124_StaticStage": "static", "A124_CoarseStage": "coarse", "A124_RefineStage": "refine"}
CSV_COLUMNS = ("image", "server", "seconds", "outputs", "status", "resume_from")


class ServerError(RuntimeError):
    """A server refused a request or could not be reached."""


def request(server: str, path: str, data: bytes | None = None, headers: dict | None = None) -> dict:
    req = urllib.request.Request(server.rstrip("/") + path, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            body = r.read()
    except urllib.error.HTTPError as err:
        raise ServerError(f"{path}: HTTP {err.code}: {err.read().decode(errors='replace')[:2000]}") from None
    except (urllib.error.URLError, OSError) as err:
        raise ServerError(f"{server} unreachable: {err}") from None
    return json.loads(body) if body else {}


def upload(server: str, image: Path, subfolder: str = "") -> str:
    """POST /upload/image (multipart; any file, here an image or a mesh) into <input>/<subfolder>; returns the name
    ComfyUI stored it under, relative to its input folder."""
    boundary = uuid.uuid4().hex
    mime = mimetypes.guess_type(image.name)[0] or "application/octet-stream"
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{image.name}"\r\n'.encode(),
            f"Content-Type: {mime}\r\n\r\n".encode(),
            image.read_bytes(),
            b"\r\n",
            f'--{boundary}\r\nContent-Disposition: form-data; name="overwrite"\r\n\r\ntrue\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="subfolder"\r\n\r\n{subfolder}\r\n'.encode(),
            f"--{boundary}--\r\n".encode(),
        ]
    )
    out = request(server, "/upload/image", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return f"{out['subfolder']}/{out['name']}" if out.get("subfolder") else out["name"]


def queue_length(server: str) -> int | None:
    """Prompts running or waiting on the server (GET /queue); None when it does not answer."""
    try:
        queue = request(server, "/queue")
    except ServerError:
        return None
    return len(queue.get("queue_running", [])) + len(queue.get("queue_pending", []))


def output_exists(server: str, relative: str) -> bool:
    """Whether <output>/<relative> exists on the server (GET /view, one byte requested)."""
    folder, _, name = relative.rpartition("/")
    query = urllib.parse.urlencode({"filename": name, "subfolder": folder, "type": "output"})
    req = urllib.request.Request(f"{server.rstrip('/')}/view?{query}", headers={"Range": "bytes=0-0"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status in (200, 206)
    except (urllib.error.URLError, OSError):
        return False


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


def prepare(workflow: dict, file_name: str, stem: str, settings: list[str], mode: str = "image") -> dict:
    """The prompt for one input file: its uploaded name in the mode's node, runs and files named after its stem."""
    prompt = json.loads(json.dumps(workflow))
    node_class, input_name = MODES[mode][1]
    takers = [k for k, v in prompt.items() if v["class_type"] == node_class]
    if len(takers) != 1:
        raise SystemExit(
            f"The workflow has {len(takers)} {node_class} nodes; it needs exactly one to feed the {mode} files"
            + (" (--mesh takes an Animate Mesh workflow)." if mode == "mesh" else ".")
        )
    prompt[takers[0]]["inputs"][input_name] = file_name
    for entry in prompt.values():
        for key in RUN_NAME_INPUTS:
            if key in entry["inputs"] and isinstance(entry["inputs"][key], str):
                entry["inputs"][key] = stem
    apply_settings(prompt, settings)
    return prompt


def resume_from_checkpoints(server: str, prompt: dict) -> list[str]:
    """Point every stage without a `resume_from` at its newest checkpoint the server can read; returns those set.

    The final `<stage>.safetensors` (the stage then trains no more steps) wins over `<stage>_latest.safetensors`.
    """
    chosen = []
    for entry in prompt.values():
        stage, inputs = STAGES.get(entry["class_type"]), entry["inputs"]
        if stage is None or inputs.get("resume_from") or not isinstance(inputs.get("run_name"), str):
            continue
        for name in (f"{stage}.safetensors", f"{stage}_latest.safetensors"):
            relative = f"checkpoints/{inputs['run_name']}/{name}"
            if output_exists(server, f"animate124/{relative}"):
                inputs["resume_from"] = relative
                chosen.append(relative)
                break
    return chosen


@dataclass
class Job:
    image: Path
    attempts: int = 0
    failed_on: set[str] = field(default_factory=set)


@dataclass
class Attempt:
    job: Job
    server: str
    prompt_id: str
    started: float
    resume_from: list[str]


def outcome(entry: dict) -> tuple[str, list[str], str]:
    """(status, output files, message) of a finished /history entry."""
    status = entry["status"].get("status_str", "error")
    messages = entry["status"].get("messages", [])
    if any(m[0] == "execution_interrupted" for m in messages):
        status = "interrupted"
    files = [
        f"{i['subfolder']}/{i['filename']}" if i.get("subfolder") else i["filename"]
        for out in entry.get("outputs", {}).values()
        for items in out.values()
        if isinstance(items, list)
        for i in items
        if isinstance(i, dict) and "filename" in i
    ]
    # Preview 3D's result: [model file relative to the output folder, camera, ...]
    files += [
        out["result"][0]
        for out in entry.get("outputs", {}).values()
        if isinstance(out.get("result"), list) and out["result"] and isinstance(out["result"][0], str)
    ]
    errors = [m[1].get("exception_message", "") for m in messages if m[0] == "execution_error"]
    return status, files, " ".join(errors).strip()


class Results:
    """The CSV, rewritten atomically after every attempt so an aborted batch still leaves its rows."""

    def __init__(self, path: Path):
        self.path, self.rows = path, []

    def add(self, image: Path, server: str, seconds: float, outputs: list[str], status: str, resume: list[str]):
        self.rows.append([str(image), server, f"{seconds:.1f}", ";".join(outputs), status, ";".join(resume)])
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(self.rows)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(buffer.getvalue())
        os.replace(tmp, self.path)


def pick_server(job: Job, idle: list[str], servers: list[str]) -> str | None:
    """The idle server with the shortest /queue among those the job has not failed on (any, once it failed on all)."""
    candidates = [s for s in idle if s not in job.failed_on]
    if not candidates and job.failed_on.issuperset(servers):
        candidates = idle
    lengths = {s: n for s in candidates if (n := queue_length(s)) is not None}
    return min(lengths, key=lambda s: (lengths[s], candidates.index(s))) if lengths else None


def run_batch(args: argparse.Namespace, workflow: dict) -> int:
    """Spread the images over the servers (one prompt of ours per server at a time); returns the failure count."""
    results = Results(args.csv)
    pending = [Job(image) for image in args.images]
    running: dict[str, Attempt] = {}
    failures = 0

    def failed(job: Job, server: str) -> None:
        nonlocal failures
        job.failed_on.add(server)
        if job.attempts <= args.retries:
            pending.append(job)
        else:
            failures += 1

    while pending or running:
        for server, attempt in list(running.items()):
            job = attempt.job
            try:
                entry = request(server, f"/history/{attempt.prompt_id}").get(attempt.prompt_id)
            except ServerError as err:
                entry, status, files, message = None, "unreachable", [], str(err)
            else:
                if entry and entry.get("status", {}).get("status_str"):
                    status, files, message = outcome(entry)
                elif time.time() - attempt.started > args.timeout:
                    status, files, message = "timeout", [], f"not finished after {args.timeout} s"
                else:
                    continue
            seconds = time.time() - attempt.started
            del running[server]
            results.add(job.image, server, seconds, files, status, attempt.resume_from)
            if status == "success":
                print(f"{job.image}: done on {server} in {seconds:.0f} s; files: {', '.join(files) or '(none)'}")
                continue
            print(f"{job.image}: {status} on {server}: {message or '(no message)'}", flush=True)
            failed(job, server)
        idle = [s for s in args.servers if s not in running]
        for job in list(pending):
            server = pick_server(job, idle, args.servers) if idle else None
            if server is None:
                continue
            idle.remove(server)
            pending.remove(job)
            job.attempts += 1
            try:
                name = upload(server, job.image, MODES[args.mode][2])
                prompt = prepare(workflow, name, job.image.stem, args.settings, args.mode)
                resume = resume_from_checkpoints(server, prompt) if job.attempts > 1 else []
                body = json.dumps({"prompt": prompt, "client_id": uuid.uuid4().hex}).encode()
                queued = request(server, "/prompt", body, {"Content-Type": "application/json"})
            except ServerError as err:
                results.add(job.image, server, 0.0, [], "refused", [])
                print(f"{job.image}: refused by {server}: {err}", flush=True)
                failed(job, server)
                continue
            running[server] = Attempt(job, server, queued["prompt_id"], time.time(), resume)
            resumed = f", resuming {', '.join(resume)}" if resume else ""
            print(f"{job.image}: queued on {server} as {queued['prompt_id']}{resumed}", flush=True)
        if running or pending:
            time.sleep(args.poll)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "images", nargs="+", type=Path, help="Reference images (RGBA with alpha works best), or meshes with --mesh."
    )
    parser.add_argument(
        "--mesh",
        action="store_const",
        const="mesh",
        default="image",
        dest="mode",
        help="Animate 3D models (.glb .gltf .obj .ply .stl) with an Animate Mesh workflow instead of images.",
    )
    parser.add_argument(
        "--server",
        dest="servers",
        action="append",
        default=[],
        help="ComfyUI address (repeatable; default http://127.0.0.1:8188).",
    )
    parser.add_argument(
        "--workflow",
        type=Path,
        default=None,
        help="An API-format workflow (*_api.json); default animate124_full_api.json, with --mesh "
        "animate124_animate_mesh_api.json.",
    )
    parser.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="NODE.INPUT=VALUE",
        help="Override an input of every queued prompt (repeatable).",
    )
    parser.add_argument(
        "--retries", type=int, default=1, help="Further attempts of a failed image (on other servers)."
    )
    parser.add_argument(
        "--csv", type=Path, default=Path("queue_images.csv"), help="Where to write one row per attempt."
    )
    parser.add_argument("--poll", type=float, default=5.0, help="Seconds between /history polls.")
    parser.add_argument("--timeout", type=float, default=24 * 3600, help="Seconds to wait for one prompt.")
    args = parser.parse_args(argv)
    args.servers = list(dict.fromkeys(s.rstrip("/") for s in args.servers)) or ["http://127.0.0.1:8188"]
    missing = [str(p) for p in args.images if not p.is_file()]
    if missing:
        raise SystemExit(f"Images not found: {', '.join(missing)}")
    stems = [p.stem for p in args.images]
    if len(set(stems)) != len(stems):
        raise SystemExit("Two images share a file name stem; each run is named after it, so rename one.")
    if args.retries < 0:
        raise SystemExit(f"--retries {args.retries}: must be 0 or more")
    suffixes = MODES[args.mode][3]
    wrong = [str(p) for p in args.images if suffixes and p.suffix.lower() not in suffixes]
    if wrong:
        raise SystemExit(f"Not a mesh file ({', '.join(suffixes)}): {', '.join(wrong)}")
    args.workflow = args.workflow or MODES[args.mode][0]
    workflow = json.loads(args.workflow.read_text())
    prepare(workflow, "check", "check", args.settings, args.mode)  # bad --set or node count: fail before any upload
    failures = run_batch(args, workflow)
    print(f"{len(args.images) - failures}/{len(args.images)} images succeeded; attempts in {args.csv}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
