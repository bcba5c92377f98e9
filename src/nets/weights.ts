// Moving a network's state to and from safetensors: strict loading for our own checkpoints,
// trunk-only loading for converted torchvision / RepVGG ImageNet weights (--pretrained).
import { CONV_INITS, type Module, type StateEntry } from './module.js';
import { type NetConfig, type NetName, attributeGroupsProblem, createNet, isNetName, type ClothNet } from './models.js';
import { type TensorMap, parseSafetensors, serializeSafetensors } from './safetensors.js';

export class WeightsError extends Error {
  override name = 'WeightsError';
}

/** Reads every state tensor back from the GPU (parts joined), with full names. */
export async function readState(net: Module): Promise<TensorMap> {
  const out: TensorMap = new Map();
  for (const e of net.stateEntries()) {
    const parts = await Promise.all(e.parts.map((p) => p.read()));
    const data = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.length;
    }
    out.set(e.name, { shape: [...e.shape], data });
  }
  return out;
}

function writeEntry(net: Module, e: StateEntry, data: Float32Array): void {
  let at = 0;
  for (const p of e.parts) {
    net.engine.write(p, data.subarray(at, at + p.size));
    at += p.size;
  }
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/** State names a converted ImageNet checkpoint provides: the trunks' (torchvision / RepVGG naming). */
export function isTrunkName(name: string): boolean {
  return /^(conv1|bn1|layer[1-4]|features|stage[0-4]|classifier\.0)\./.test(name);
}

/**
 * Copies `tensors` into the network. strict: names and shapes must match exactly (BatchNorm's
 * num_batches_tracked is ignored). pretrained: every trunk tensor of the network must be present;
 * heads, branches and the file's other tensors (ImageNet classifier) are left alone.
 * Errors list every missing, unexpected and mis-shaped tensor.
 */
export function loadState(net: Module, tensors: TensorMap, mode: 'strict' | 'pretrained', source: string): { loaded: number; ignored: string[] } {
  const entries = net.stateEntries();
  const wanted = mode === 'strict' ? entries : entries.filter((e) => isTrunkName(e.name));
  const missing = wanted.filter((e) => !tensors.has(e.name)).map((e) => `${e.name} [${e.shape}]`);
  const misShaped = wanted.filter((e) => tensors.has(e.name) && !sameShape(tensors.get(e.name)!.shape, e.shape)).map((e) => `${e.name}: file [${tensors.get(e.name)!.shape}], network [${e.shape}]`);
  const known = new Set(entries.map((e) => e.name));
  const extra = [...tensors.keys()].filter((n) => !known.has(n) && !n.endsWith('num_batches_tracked'));
  const problems: string[] = [];
  if (missing.length) problems.push(`missing (${missing.length}): ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ', ...' : ''}`);
  if (misShaped.length) problems.push(`wrong shape (${misShaped.length}): ${misShaped.slice(0, 20).join('; ')}`);
  if (mode === 'strict' && extra.length) problems.push(`unexpected (${extra.length}): ${extra.slice(0, 20).join(', ')}${extra.length > 20 ? ', ...' : ''}`);
  if (problems.length) throw new WeightsError(`${source} does not fit this network:\n  ${problems.join('\n  ')}`);
  // NaN or infinite weights make every output NaN: refused by name rather than labelled with.
  const broken = wanted.filter((e) => tensors.get(e.name)!.data.some((v) => !Number.isFinite(v))).map((e) => {
    const data = tensors.get(e.name)!.data;
    return `${e.name} (${data.filter((v) => !Number.isFinite(v)).length} of ${data.length})`;
  });
  if (broken.length) throw new WeightsError(`${source} has non-finite weights (NaN or infinity) in ${broken.length} tensors: ${broken.slice(0, 10).join(', ')}${broken.length > 10 ? ', ...' : ''}; it cannot be used (a run that diverged?)`);
  for (const e of wanted) writeEntry(net, e, tensors.get(e.name)!.data);
  return { loaded: wanted.length, ignored: mode === 'strict' ? [] : extra };
}

export interface CheckpointMeta {
  config: NetConfig;
  /** Whether the RepVGG blocks are fused (the state then names rbr_reparam). */
  deployed: boolean;
  /** Anything else worth keeping beside the weights (vocabulary, training state). */
  extra?: Record<string, string>;
}

/** A safetensors checkpoint: the state plus the network's configuration in the metadata. */
export async function saveCheckpoint(net: ClothNet, extra: Record<string, string> = {}): Promise<Uint8Array> {
  const deployed = net.repBlocks().some((b) => b.deployed);
  return serializeSafetensors(await readState(net), { format: 'clothtag', config: JSON.stringify(net.config), deployed: String(deployed), ...extra });
}

/**
 * Checks a checkpoint's configuration against its own tensors before anything is allocated for
 * it: a 2 MB file whose metadata claims a million categories must not cost gigabytes first.
 */
function checkConfig(config: NetConfig, tensors: TensorMap, source: string): void {
  const count = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  if (!count(config.categories) || !count(config.attributes)) throw new WeightsError(`${source}: its metadata's categories and attributes must be whole numbers >= 0 (got ${config.categories}, ${config.attributes})`);
  // The widths' bounds are createNet's: whatever it builds, a checkpoint of it loads.
  if (!(typeof config.width === 'number' && config.width > 0 && config.width <= 4)) throw new WeightsError(`${source}: its metadata's width must be in (0, 4], got ${config.width}`);
  if (config.stemStride !== undefined && config.stemStride !== 1 && config.stemStride !== 2) throw new WeightsError(`${source}: its metadata's stemStride must be 1 or 2, got ${config.stemStride}`);
  if (config.convInit !== undefined && !CONV_INITS.includes(config.convInit)) throw new WeightsError(`${source}: its metadata's convInit must be one of ${CONV_INITS.join(', ')}, got ${String(config.convInit)}`);
  if (config.headWidth !== undefined && !(typeof config.headWidth === 'number' && config.headWidth > 0 && config.headWidth <= 4)) throw new WeightsError(`${source}: its metadata's headWidth must be in (0, 4], got ${config.headWidth}`);
  const groupsProblem = attributeGroupsProblem(config.attributeGroups, config.attributes);
  if (groupsProblem) throw new WeightsError(`${source}: its metadata's ${groupsProblem}`);
  for (const flag of ['landmarkPrior', 'landmarkSkips', 'vggBatchNorm', 'box', 'boxRefine'] as const) {
    if (config[flag] !== undefined && typeof config[flag] !== 'boolean') throw new WeightsError(`${source}: its metadata's ${flag} must be true or false, got ${JSON.stringify(config[flag])}`);
  }
  for (const [head, n, what] of [['category', config.categories, 'categories'], ['attributes', config.attributes, 'attributes']] as const) {
    const bias = tensors.get(`${head}.bias`);
    const held = bias ? bias.shape[0] ?? 0 : 0;
    if (held !== n) throw new WeightsError(`${source}: its metadata says ${n} ${what} but its ${head} head holds ${held}`);
  }
}

/** Builds the network a checkpoint describes and loads its weights (strict). */
export async function loadCheckpoint(engine: ClothNet['engine'], bytes: ArrayBuffer | Uint8Array, source: string): Promise<{ net: ClothNet; meta: CheckpointMeta }> {
  const { tensors, metadata } = parseSafetensors(bytes, source);
  if (!metadata.config) throw new WeightsError(`${source} is not a clothtag checkpoint (no network configuration in its metadata); use --pretrained for ImageNet trunks`);
  let config: NetConfig;
  try {
    config = JSON.parse(metadata.config);
  } catch {
    throw new WeightsError(`${source}: the network configuration in its metadata is not valid JSON`);
  }
  if (!config || typeof config !== 'object' || !isNetName(config.net as string)) throw new WeightsError(`${source}: unknown network "${config?.net}"`);
  checkConfig(config, tensors, source);
  const net = createNet(engine, { ...config, net: config.net as NetName });
  const deployed = metadata.deployed === 'true';
  if (deployed) await net.reparameterize();
  try {
    loadState(net, tensors, 'strict', source);
  } catch (e) {
    net.dispose();
    throw e;
  }
  const { config: _c, deployed: _d, format: _f, ...extra } = metadata;
  return { net, meta: { config, deployed, extra } };
}

/** The garment-box head's tensors of a state (src/nets/locator.ts: `box_locator.*`). */
export const boxHeadOf = (tensors: TensorMap) => [...tensors].filter(([name]) => name.startsWith('box_locator.'));

/**
 * `into`'s tensors with the garment-box head's (`box_locator.*`) taken from `from`. The box head
 * shares no weight with the labels, so any network's head can go into any network built with one,
 * as long as the two heads are the same network, tensor for tensor (else an error naming both).
 */
export function replaceBoxHead(into: TensorMap, from: TensorMap, names: { into: string; from: string }): TensorMap {
  const head = boxHeadOf(from), old = boxHeadOf(into);
  if (!head.length) throw new WeightsError(`${names.from} has no garment-box head (box_locator.*): it was trained without boxes`);
  if (!old.length) throw new WeightsError(`${names.into} has no garment-box head to replace (it was trained with --wb 0 or on photos without boxes): a box head goes only into a network built with one`);
  const unmatched = new Set(head.map(([name]) => name));
  for (const [name, t] of old) {
    const other = from.get(name);
    if (!other) throw new WeightsError(`${names.from}'s box head has no ${name}, which ${names.into}'s has: the two heads are not the same network`);
    if (other.shape.join('x') !== t.shape.join('x')) throw new WeightsError(`${name} is [${other.shape}] in ${names.from} but [${t.shape}] in ${names.into}: the two heads are not the same network`);
    unmatched.delete(name);
  }
  if (unmatched.size) throw new WeightsError(`${names.from}'s box head has ${[...unmatched][0]}, which ${names.into}'s has not: the two heads are not the same network`);
  const tensors: TensorMap = new Map(into);
  for (const [name, t] of head) tensors.set(name, t);
  return tensors;
}
