// Validate a GLB with the Khronos glTF validator and load it with three.js's GLTFLoader; print one JSON object.
// Usage: node check_glb.mjs FILE.glb [SAMPLES]
// "three.frames[k][i]" is the position of sample vertex i after AnimationMixer plays the first clip to frame k
// (base + sum_j influence_j * morph_j, what a three.js viewer draws), read back for the Python test to compare.
// Frame k is sampled at k / fps (LINEAR) or in the middle of its interval (STEP: float32 key times may lie just
// after k / fps).
import { readFileSync } from "node:fs";
import validator from "gltf-validator";
import { AnimationMixer, InterpolateDiscrete, Texture } from "three";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";

const [file, samplesArg] = process.argv.slice(2);
const bytes = new Uint8Array(readFileSync(file));
const report = await validator.validateBytes(bytes, { maxIssues: 50 });
const issues = report.issues;
const out = {
  validator: {
    numErrors: issues.numErrors,
    numWarnings: issues.numWarnings,
    messages: issues.messages.filter((m) => m.severity <= 1).map((m) => `${m.code} ${m.pointer ?? ""}: ${m.message}`),
    extensionsUsed: report.info?.extensionsUsed ?? [],
  },
};

const gltf = await new Promise((resolve, reject) =>
  new GLTFLoader()
    // Node has no image decoder: embedded textures load as blank textures (the geometry and the clip are checked;
    // the validator above has read the images).
    .register((parser) => {
      parser.loadImageSource = () => Promise.resolve(new Texture());
      return { name: "a124_blank_images" };
    })
    .parse(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength), "", resolve, reject),
);
const meshes = [];
gltf.scene.traverse((o) => {
  if (o.isMesh) meshes.push(o);
});
const clips = gltf.animations.map((c) => ({ name: c.name, duration: c.duration, tracks: c.tracks.map((t) => t.name) }));
const three = {
  clips,
  meshes: meshes.map((m) => ({
    name: m.name,
    vertexCount: m.geometry.attributes.position.count,
    morphTargets: (m.geometry.morphAttributes.position ?? []).length,
    morphTargetsRelative: m.geometry.morphTargetsRelative,
    hasColors: "color" in m.geometry.attributes,
  })),
};
const mesh = meshes[0];
if (mesh && gltf.animations.length && mesh.geometry.morphAttributes.position) {
  const geometry = mesh.geometry;
  const base = geometry.attributes.position;
  const morphs = geometry.morphAttributes.position;
  const count = Math.min(Number(samplesArg ?? 64), base.count);
  const step = base.count / count;
  const indices = Array.from({ length: count }, (_, i) => Math.floor(i * step));
  const mixer = new AnimationMixer(gltf.scene);
  mixer.clipAction(gltf.animations[0]).play();
  const fps = morphs.length / gltf.animations[0].duration;
  const discrete = gltf.animations[0].tracks[0].getInterpolation() === InterpolateDiscrete;
  three.fps = fps;
  three.indices = indices;
  three.frames = [];
  for (let k = 0; k < morphs.length; k++) {
    mixer.setTime((k + (discrete ? 0.5 : 0)) / fps);
    const influences = mesh.morphTargetInfluences;
    three.frames.push(
      indices.map((v) =>
        [0, 1, 2].map((axis) => {
          let p = base.getComponent(v, axis);
          for (let j = 0; j < morphs.length; j++) if (influences[j]) p += influences[j] * morphs[j].getComponent(v, axis);
          return p;
        }),
      ),
    );
  }
}
out.three = three;
console.log(JSON.stringify(out));
