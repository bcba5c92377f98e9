// `clothtag tune`: finds the shapes one training step of a network runs (traced without running
// it), times every candidate tile on each (src/engine/tune.ts) and keeps the winners.
import { conv2d, conv2dGradInput, conv2dGradWeight, convOutSize } from '../engine/conv.js';
import type { Engine } from '../engine/engine.js';
import { matmul } from '../engine/gemm.js';
import { type ConvShape, type GemmShape, type TuneResult, type TuningTable, chooseConvTile, chooseGemmTile, convKey, gemmKey, tuneShape } from '../engine/tune.js';
import { type ClothNet, type NetName, createNet } from '../nets/models.js';
import { THESIS_LOSS } from '../train/losses.js';
import { type HostBatch, Trainer } from '../train/step.js';

/** A batch of made-up inputs and targets of the right shapes (for timing, never for learning). */
export function syntheticBatch(net: ClothNet, n: number, size: number, points = false): HostBatch {
  return {
    n,
    size,
    images: Float32Array.from({ length: n * 3 * size * size }, (_, i) => Math.sin(i)),
    category: Float32Array.from({ length: n }, (_, i) => i % 50),
    attributes: Float32Array.from({ length: n * 1000 }, (_, i) => (i % 37 === 0 ? 1 : 0)),
    heatmaps: net.hasLandmarks ? new Float32Array(n * 8 * size * size) : null,
    landmarkMask: net.hasLandmarks ? new Float32Array(n * 8).fill(1) : null,
    // With `points` (the soft-argmax objective): every landmark visible, spread over the frame.
    landmarks: net.hasLandmarks && points ? Float32Array.from({ length: n * 8 * 3 }, (_, i) => (i % 3 === 0 ? 1 : (i * 7) % size)) : null,
  };
}

export type TracedShape = { gemm: GemmShape } | { conv: ConvShape };

/** The distinct GEMM and convolution shapes (by tuning key) of one training step, without running it. */
export function traceTrainingShapes(engine: Engine, o: { net: NetName; width: number; size: number; batch: number }): Map<string, TracedShape> {
  const shapes = new Map<string, TracedShape>();
  const traceShapes = (s: TracedShape) => void shapes.set('gemm' in s ? gemmKey(s.gemm) : convKey(s.conv), s);
  engine.with({ countOnly: true, traceShapes }, () => {
    const net = createNet(engine, { net: o.net, categories: 50, attributes: 1000, width: o.width, seed: 1 });
    const trainer = new Trainer(net, { ...THESIS_LOSS, landmarkLoss: o.net === 'new_fashionnet' ? 'ssim' : 'mse' }, 1e-4);
    engine.tidy(() => trainer.step(syntheticBatch(net, o.batch, o.size), 0));
    trainer.dispose();
    net.dispose();
  });
  return shapes;
}

/** Times every candidate tile on one traced shape (on made-up data of that shape). */
export async function tuneTraced(engine: Engine, key: string, s: TracedShape, table: TuningTable, reps: number): Promise<TuneResult> {
  return engine.tidyAsync(async () => {
    if ('gemm' in s) {
      const { M, N, K, batch, transA, transB } = s.gemm;
      const lead = batch > 1 ? [batch] : [];
      const a = engine.full([...lead, ...(transA ? [K, M] : [M, K])], 0.5);
      const b = engine.full([...lead, ...(transB ? [N, K] : [K, N])], 0.25);
      return tuneShape(engine, key, table, chooseGemmTile(s.gemm, engine.adapter), (tile) => void matmul(a, b, { transA, transB, tile }), reps);
    }
    const c = s.conv;
    const g = { stride: c.stride, pad: c.pad ?? 0 };
    const OH = convOutSize(c.H, c.KH, g.stride, g.pad), OW = convOutSize(c.W, c.KW, g.stride, g.pad);
    const x = engine.full([c.N, c.C, c.H, c.W], 0.5), w = engine.full([c.K, c.C, c.KH, c.KW], 0.01), dy = engine.full([c.N, c.K, OH, OW], 0.1);
    const fallback = chooseConvTile(c, engine.adapter);
    if (c.pass === 'forward') return tuneShape(engine, key, table, fallback, (tile) => void conv2d(x, w, undefined, g, { tile }), reps);
    if (c.pass === 'backward_data') return tuneShape(engine, key, table, fallback, (tile) => void conv2dGradInput(dy, w, x.shape, g, undefined, tile), reps);
    return tuneShape(engine, key, table, fallback, (tile) => void conv2dGradWeight(dy, x, w.shape, g, tile), reps);
  });
}
