// ONNX export: a network's eval-mode forward pass, traced op by op (src/autograd/trace.ts), written
// as an ONNX graph (opset 18) with the weights as initializers. The protobuf encoding is the
// `onnx-proto` package's (generated from ONNX's own onnx.proto). BatchNorm stays an explicit
// BatchNormalization node: runtimes fold it into the convolution when they load the graph, and the
// exported weights stay the checkpoint's own. RepVGG networks are exported deployed.
import onnxProto from 'onnx-proto';
import { traceOps, type TracedOp } from '../autograd/trace.js';
import type { Tensor } from '../engine/tensor.js';
import { BOX_INPUT } from '../nets/locator.js';
import type { ClothNet, NetOutput } from '../nets/models.js';

const { onnx } = onnxProto;

export const ONNX_OPSET = 18;
/** The outputs a network may have, by name (its NetOutput keys; the box head's `box` is a graph of its own). */
export const ONNX_OUTPUTS = ['category', 'attributes', 'heatmaps'] as const;

export interface OnnxExportOptions {
  /** Input side in pixels (the size the network was trained at). */
  size: number;
  /** A fixed batch size, or 'dynamic' (the batch axis is named N). */
  batch: number | 'dynamic';
  /**
   * 'labels' (the default): input `image`, the label outputs. 'box': the garment-box head alone,
   * input `photo` [N, 3, BOX_INPUT, BOX_INPUT] (the whole photo), output `box` [N, 4] (cx, cy, w, h
   * fractions; one pass: clothtag also averages the mirror image's box, predictBoxes).
   */
  part?: 'labels' | 'box';
}

export class OnnxExportError extends Error {
  override name = 'OnnxExportError';
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

function floatTensor(name: string, dims: readonly number[], data: Float32Array): onnxProto.onnx.ITensorProto {
  return { name, dims: [...dims], dataType: FLOAT, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

function int64Tensor(name: string, values: readonly number[]): onnxProto.onnx.ITensorProto {
  const raw = new BigInt64Array(values.map((v) => BigInt(v)));
  return { name, dims: [values.length], dataType: INT64, rawData: new Uint8Array(raw.buffer) };
}

type AttrValue = number | number[] | string;

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  return Number.isInteger(v) && !Object.is(v, -0) && name !== 'epsilon' ? { name, type: T.INT, i: v } : { name, type: T.FLOAT, f: v };
}

/**
 * The adaptive average pooling of an H x W plane to OH x OW as a matrix [H*W, OH*OW]: cell o
 * averages rows [floor(o*H/OH), ceil((o+1)*H/OH)) (PyTorch's rule, as kernels/pool.wgsl).
 */
export function adaptivePoolMatrix(H: number, W: number, OH: number, OW: number): Float32Array {
  const m = new Float32Array(H * W * OH * OW);
  for (let oy = 0; oy < OH; oy++) {
    const y0 = Math.floor((oy * H) / OH), y1 = Math.ceil(((oy + 1) * H) / OH);
    for (let ox = 0; ox < OW; ox++) {
      const x0 = Math.floor((ox * W) / OW), x1 = Math.ceil(((ox + 1) * W) / OW);
      const share = 1 / ((y1 - y0) * (x1 - x0));
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[(y * W + x) * OH * OW + oy * OW + ox] = share;
    }
  }
  return m;
}

/** Builds the graph's nodes from the trace; `nameOf` names every tensor (inputs, constants, outputs). */
class GraphBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private count = 0;

  constructor(
    private readonly batch: number,
    private readonly dynamic: boolean,
  ) {}

  fresh(hint: string): string {
    return `${hint}_${this.count++}`;
  }

  node(op: string, inputs: string[], output: string, attrs: Record<string, AttrValue> = {}): string {
    this.nodes.push({ opType: op, input: inputs, output: [output], name: this.fresh(op), attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) });
    return output;
  }

  ints(values: readonly number[], hint = 'shape'): string {
    const name = this.fresh(hint);
    this.initializers.push(int64Tensor(name, values));
    return name;
  }

  floats(dims: readonly number[], data: Float32Array, hint = 'const'): string {
    const name = this.fresh(hint);
    this.initializers.push(floatTensor(name, dims, data));
    return name;
  }

  /** A target shape for Reshape: the batch axis copied from the input (0) when it is the batch. */
  shape(from: readonly number[], to: readonly number[]): string {
    const keepBatch = this.dynamic && to[0] === this.batch && from[0] === this.batch;
    return this.ints(keepBatch ? [0, ...to.slice(1)] : [...to]);
  }

  /** The op's output, followed by a Relu when the op fused one. */
  withRelu(op: string, inputs: string[], output: string, relu: unknown, attrs: Record<string, AttrValue> = {}): void {
    if (!relu) {
      this.node(op, inputs, output, attrs);
      return;
    }
    this.node('Relu', [this.node(op, inputs, this.fresh(`${output}_pre`), attrs)], output);
  }
}

function emit(b: GraphBuilder, t: TracedOp, name: (x: Tensor) => string, valueOf: (x: Tensor) => Float32Array): void {
  const [x, y, z] = t.inputs;
  const out = name(t.output);
  const a = t.attrs;
  const optional = (v: Tensor | undefined) => (v ? [name(v)] : []);
  const pads = (p: number) => [p, p, p, p];
  switch (t.op) {
    case 'add':
      return b.withRelu('Add', [name(x!), name(y!)], out, a.relu);
    case 'sub':
      b.node('Sub', [name(x!), name(y!)], out);
      return;
    case 'mul':
      b.node('Mul', [name(x!), name(y!)], out);
      return;
    case 'scale':
      b.node('Mul', [name(x!), b.floats([], new Float32Array([a.scale as number]), 'scale')], out);
      return;
    case 'addBias': {
      // The bias [C] against [N, C, ...]: a copy shaped [C, 1, 1...] broadcasts the ONNX way.
      const bias = x!.rank === 2 ? name(y!) : b.floats([y!.size, ...Array(x!.rank - 2).fill(1)], valueOf(y!), 'bias');
      b.node('Add', [name(x!), bias], out);
      return;
    }
    case 'relu':
      b.node('Relu', [name(x!)], out);
      return;
    case 'exp':
      b.node('Exp', [name(x!)], out);
      return;
    case 'sigmoid':
      b.node('Sigmoid', [name(x!)], out);
      return;
    case 'sum':
    case 'mean':
    case 'max': {
      const op = { sum: 'ReduceSum', mean: 'ReduceMean', max: 'ReduceMax' }[t.op];
      b.node(op, [name(x!), b.ints(a.axes as number[], 'axes')], out, { keepdims: a.keepDims ? 1 : 0 });
      return;
    }
    case 'reshape':
      b.node('Reshape', [name(x!), b.shape(x!.shape, t.output.shape)], out);
      return;
    case 'matmul':
      if (x!.rank !== 2) throw new OnnxExportError(`batched matmul ${x!.describe()} x ${y!.describe()} is not exported`);
      b.node('Gemm', [name(x!), name(y!)], out, { transA: a.transA ? 1 : 0, transB: a.transB ? 1 : 0 });
      return;
    case 'linear':
      return b.withRelu('Gemm', [name(x!), name(y!), ...optional(z)], out, a.relu, { transB: 1 });
    case 'conv2d':
    case 'convTranspose2d': {
      const [, , KH, KW] = y!.shape as [number, number, number, number];
      const op = t.op === 'conv2d' ? 'Conv' : 'ConvTranspose';
      return b.withRelu(op, [name(x!), name(y!), ...optional(z)], out, a.relu, { kernel_shape: [KH, KW], strides: [a.stride as number, a.stride as number], pads: pads(a.pad as number) });
    }
    case 'batchNorm2d':
      return b.withRelu('BatchNormalization', t.inputs.map((v) => name(v)), out, a.relu, { epsilon: a.eps as number });
    case 'maxPool2d':
    case 'avgPool2d': {
      const k = a.kernel as number, s = a.stride as number;
      const attrs: Record<string, AttrValue> = { kernel_shape: [k, k], strides: [s, s], pads: pads(a.pad as number) };
      // Padding counts as zeros in the average (PyTorch's default, kernels/pool.wgsl).
      if (t.op === 'avgPool2d') attrs.count_include_pad = 1;
      b.node(t.op === 'maxPool2d' ? 'MaxPool' : 'AveragePool', [name(x!)], out, attrs);
      return;
    }
    case 'adaptiveAvgPool2d': {
      const [N, C, H, W] = x!.shape as [number, number, number, number];
      const [OH, OW] = a.size as [number, number];
      if (H % OH === 0 && W % OW === 0) {
        b.node('AveragePool', [name(x!)], out, { kernel_shape: [H / OH, W / OW], strides: [H / OH, W / OW] });
        return;
      }
      // Any other size (VGG's 7x7 from a 2x2 map at 64x64): a matrix product with the pooling matrix.
      const flat = b.node('Reshape', [name(x!), b.shape([N], [N, C, H * W])], b.fresh('flat'));
      const pooled = b.node('MatMul', [flat, b.floats([H * W, OH * OW], adaptivePoolMatrix(H, W, OH, OW), 'pool')], b.fresh('pooled'));
      b.node('Reshape', [pooled, b.shape([N], [N, C, OH, OW])], out);
      return;
    }
    case 'resizeBilinear': {
      // Half-pixel centres, clamped at the edges: PyTorch's align_corners=False (kernels/resize.wgsl).
      const sizes = b.ints(a.size as number[], 'sizes');
      b.node('Resize', [name(x!), '', '', sizes], out, { mode: 'linear', coordinate_transformation_mode: 'half_pixel', axes: [2, 3] });
      return;
    }
    case 'concatChannels':
      b.node('Concat', t.inputs.map((v) => name(v)), out, { axis: 1 });
      return;
    default:
      throw new OnnxExportError(`the op ${t.op} has no ONNX form here`);
  }
}

/**
 * Writes `net` (in eval mode; a RepVGG net should be reparameterized first) as ONNX bytes: input
 * `image` [N, 3, size, size] (ImageNet-normalized RGB), outputs category, attributes and heatmaps
 * where the network has them.
 */
export async function exportOnnx(net: ClothNet, o: OnnxExportOptions): Promise<Uint8Array> {
  const engine = net.engine;
  const dynamic = o.batch === 'dynamic';
  // A dynamic graph is traced at batch 2, so that the batch axis cannot be taken for a 1 elsewhere.
  const batch = dynamic ? 2 : (o.batch as number);
  net.setTraining(false);
  const box = o.part === 'box';
  const input = box ? 'photo' : 'image';
  const side = box ? BOX_INPUT : o.size;
  const x = engine.empty([batch, 3, side, side], input);
  // Gradients stay on while tracing: the eval-mode shortcut that folds BatchNorm into the
  // convolution's epilogue (layers.ts convBN) runs outside the ops and would not be traced.
  const { result, trace } = traceOps((): NetOutput & { box?: Tensor } => (box ? { box: net.locate(x) } : net.forward(x)));
  try {
    const names = new Map<Tensor, string>([[x, input]]);
    for (const e of net.stateEntries()) e.parts.forEach((p, i) => names.set(p, e.parts.length > 1 ? `${e.name}.part${i}` : e.name));
    const outputs = box ? (['box'] as const) : ONNX_OUTPUTS.filter((k) => result[k]);
    for (const k of outputs) names.set(result[k]!, k);
    const b = new GraphBuilder(batch, dynamic);
    // Constants: the network's state under its own names, anything else (a 0.5, a split weight) numbered.
    const values = new Map<Tensor, Float32Array>();
    for (const [t, view] of trace.constants) {
      if (t === x) continue;
      const data = await view.read();
      values.set(t, data);
      if (!names.has(t)) names.set(t, b.fresh('const'));
      b.initializers.push(floatTensor(names.get(t)!, t.shape, data));
    }
    let k = 0;
    const nameOf = (t: Tensor) => {
      if (!names.has(t)) names.set(t, `t${k++}`);
      return names.get(t)!;
    };
    for (const op of trace.ops) emit(b, op, nameOf, (t) => values.get(t) ?? (() => { throw new OnnxExportError(`${t.describe()} is not a constant`); })());
    const N = dynamic ? { dimParam: 'N' } : { dimValue: batch };
    const valueInfo = (name: string, shape: readonly number[]): onnxProto.onnx.IValueInfoProto => ({
      name,
      type: { tensorType: { elemType: FLOAT, shape: { dim: [N, ...shape.slice(1).map((d) => ({ dimValue: d }))] } } },
    });
    const graph: onnxProto.onnx.IGraphProto = {
      name: net.config.net,
      node: b.nodes,
      initializer: b.initializers,
      input: [valueInfo(input, x.shape)],
      output: outputs.map((k) => valueInfo(k, result[k]!.shape)),
    };
    const model = onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: ONNX_OPSET }],
      producerName: 'clothtag',
      graph,
      docString: `clothtag ${net.config.net} (width ${net.config.width})${box ? ' garment-box head' : ''}, eval mode, input ${side}x${side}`,
    });
    return onnx.ModelProto.encode(model).finish();
  } finally {
    trace.dispose();
    for (const k of [...ONNX_OUTPUTS, 'box'] as const) result[k]?.dispose();
    x.dispose();
  }
}
