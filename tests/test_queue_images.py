"""scripts/queue_images.py against stand-in ComfyUI servers (the HTTP routes it uses, on loopback threads): the idle
server with the shortest /queue gets the next image, a failed image is retried on another server resuming from the
checkpoint that server can read, and the CSV has one row per attempt. The real servers: tests/comfyui_host."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.paths import REPO

WORKFLOW = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}},
    "2": {"class_type": "A124_StaticStage", "inputs": {"preset": "smoke", "run_name": "x", "resume_from": ""}},
    "3": {"class_type": "A124_OrbitRender", "inputs": {"scene": ["2", 0], "filename_prefix": "x"}},
}


def load_script():
    spec = importlib.util.spec_from_file_location("queue_images", REPO / "scripts" / "queue_images.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class FakeComfy:
    """/queue, /upload/image, /prompt, /history/<id>, /view of one server; prompts finish at once.

    `others` prompts of other clients sit in its queue; `fail` is how many of our prompts end with an execution
    error (writing `<stage>_latest` into `files`, as an interrupted stage does); `files` are the output files /view
    finds.
    """

    def __init__(self, others: int = 0, fail: int = 0, files: set[str] | None = None):
        self.others, self.fail, self.files = others, fail, files if files is not None else set()
        self.prompts: list[dict] = []
        self.uploads: list[str] = []
        self.history: dict[str, dict] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status: int, body: dict | None = None):
                data = json.dumps(body or {}).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                if url.path == "/queue":
                    return self.reply(200, {"queue_running": [], "queue_pending": [[0]] * fake.others})
                if url.path.startswith("/history/"):
                    pid = url.path.rsplit("/", 1)[1]
                    return self.reply(200, {pid: fake.history[pid]} if pid in fake.history else {})
                if url.path == "/view":
                    q = dict(urllib.parse.parse_qsl(url.query))
                    return self.reply(200 if f"{q['subfolder']}/{q['filename']}" in fake.files else 404)
                self.reply(404)

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/upload/image":
                    name = body.split(b'filename="', 1)[1].split(b'"', 1)[0].decode()
                    folder = body.split(b'name="subfolder"\r\n\r\n', 1)[1].split(b"\r\n", 1)[0].decode()
                    fake.uploads.append(f"{folder}/{name}" if folder else name)
                    return self.reply(200, {"name": name, "subfolder": folder, "type": "input"})
                prompt = json.loads(body)["prompt"]
                fake.prompts.append(prompt)
                pid = uuid.uuid4().hex
                run = next(v["inputs"]["run_name"] for v in prompt.values() if "run_name" in v["inputs"])
                if fake.fail:
                    fake.fail -= 1
                    fake.files.add(f"animate124/checkpoints/{run}/static_latest.safetensors")
                    error = ["execution_error", {"exception_message": "CUDA out of memory"}]
                    fake.history[pid] = {"status": {"status_str": "error", "messages": [error]}, "outputs": {}}
                else:
                    video = {"filename": f"{run}.mp4", "subfolder": "animate124/videos", "type": "output"}
                    fake.history[pid] = {
                        "status": {"status_str": "success", "messages": []},
                        "outputs": {"3": {"images": [video], "animated": [True]}},
                    }
                self.reply(200, {"prompt_id": pid, "number": len(fake.prompts), "node_errors": {}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def images(self) -> list[str]:
        return [p["1"]["inputs"]["image"] for p in self.prompts]


@pytest.fixture
def script():
    return load_script()


@pytest.fixture
def images(tmp_path):
    paths = []
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.png").write_bytes(b"\x89PNG fake")
        paths.append(tmp_path / f"{name}.png")
    (tmp_path / "wf.json").write_text(json.dumps(WORKFLOW))
    return paths


def run(script, servers, images, tmp_path, *extra):
    args = [*[a for s in servers for a in ("--server", s.url)], "--workflow", str(tmp_path / "wf.json")]
    code = script.main([*args, "--poll", "0.01", "--csv", str(tmp_path / "out.csv"), *extra, *map(str, images)])
    with open(tmp_path / "out.csv", newline="") as f:
        return code, list(csv.DictReader(f))


def test_shortest_queue_gets_the_image(script, images, tmp_path):
    busy, free = FakeComfy(others=3), FakeComfy(others=1)
    code, rows = run(script, [busy, free], images[:1], tmp_path)
    assert code == 0 and free.images() == ["a.png"] and busy.images() == []
    assert rows == [
        {
            "image": str(images[0]),
            "server": free.url,
            "seconds": rows[0]["seconds"],
            "outputs": "animate124/videos/a.mp4",
            "status": "success",
            "resume_from": "",
        }
    ]
    # Each run is named after its image, so runs never overwrite each other.
    assert (
        free.prompts[0]["2"]["inputs"]["run_name"] == "a" and free.prompts[0]["3"]["inputs"]["filename_prefix"] == "a"
    )


def test_failed_image_is_retried_on_another_server_from_its_checkpoint(script, images, tmp_path):
    shared: set[str] = set()  # both servers read one output folder
    flaky, steady = FakeComfy(fail=1, files=shared), FakeComfy(others=1, files=shared)
    code, rows = run(script, [flaky, steady], images, tmp_path)
    assert code == 0
    assert flaky.images()[0] == "a.png"  # shortest queue first
    retried = [r for r in rows if r["image"].endswith("a.png")]
    assert [(r["server"], r["status"]) for r in retried] == [(flaky.url, "error"), (steady.url, "success")]
    assert retried[1]["resume_from"] == "checkpoints/a/static_latest.safetensors"
    resumed = [p for p in steady.prompts if p["1"]["inputs"]["image"] == "a.png"]
    assert resumed[0]["2"]["inputs"]["resume_from"] == "checkpoints/a/static_latest.safetensors"
    assert sorted(r["image"].rsplit("/", 1)[1] for r in rows if r["status"] == "success") == [
        "a.png",
        "b.png",
        "c.png",
    ]
    assert {r["server"] for r in rows if r["status"] == "success"} == {flaky.url, steady.url}


def test_exit_status_counts_images_that_failed_every_attempt(script, images, tmp_path):
    server = FakeComfy(fail=2)
    code, rows = run(script, [server], images[:2], tmp_path, "--retries", "0")
    assert code == 1 and [r["status"] for r in rows] == ["error", "error"]
    assert all(r["resume_from"] == "" for r in rows)


def test_bad_settings_fail_before_any_upload(script, images, tmp_path):
    server = FakeComfy()
    with pytest.raises(SystemExit, match="naming an input"):
        run(script, [server], images, tmp_path, "--set", "9.steps=3")
    assert server.prompts == []


def test_retry_avoids_the_server_that_failed_even_with_the_shorter_queue(script, images, tmp_path):
    flaky, steady = FakeComfy(fail=1), FakeComfy(others=2)
    code, rows = run(script, [flaky, steady], images[:1], tmp_path)
    assert code == 0 and [(r["server"], r["status"]) for r in rows] == [(flaky.url, "error"), (steady.url, "success")]
    assert rows[1]["resume_from"] == ""  # the checkpoint stayed in the flaky server's own output folder


def test_mesh_mode_uploads_to_input_3d_and_picks_the_file_in_animate_mesh(script, tmp_path):
    """--mesh: each model goes to the server's input/3d and into Animate Mesh's model_file (the shipped animate-mesh
    workflow by default); runs and files are named after the model; a file that is not a mesh fails before any
    upload."""
    meshes = [tmp_path / "robot.glb", tmp_path / "cat.obj"]
    for path in meshes:
        path.write_bytes(b"mesh")
    one, two = FakeComfy(), FakeComfy(others=1)
    code = script.main(["--mesh", "--server", one.url, "--server", two.url, "--poll", "0.01"]
                       + ["--csv", str(tmp_path / "m.csv"), *map(str, meshes)])  # fmt: skip
    assert code == 0 and sorted(one.uploads + two.uploads) == ["3d/cat.obj", "3d/robot.glb"]
    prompts = one.prompts + two.prompts
    animate = {p["3"]["inputs"]["model_file"]: p["3"]["inputs"] for p in prompts}
    assert set(animate) == {"3d/robot.glb", "3d/cat.obj"} and all(p["4"]["class_type"] == "Preview3D" for p in prompts)
    assert animate["3d/robot.glb"]["run_name"] == "robot" and animate["3d/cat.obj"]["filename_prefix"] == "cat"
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SystemExit, match="Not a mesh file"):
        script.main(["--mesh", "--server", one.url, str(tmp_path / "notes.txt")])
    with pytest.raises(SystemExit, match="A124_AnimateMesh nodes"):
        script.main(["--mesh", "--server", one.url, "--workflow", str(REPO / "workflows" / "animate124_full_api.json")]
                    + [str(meshes[0])])  # fmt: skip
