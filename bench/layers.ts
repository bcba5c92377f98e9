// The convolution layers of the thesis's trunks, as (input size, channels, kernel, stride) at a
// given input image size. Repeated identical layers are listed once with a count.

export interface ConvLayer {
  net: string;
  name: string;
  C: number;
  K: number;
  H: number;
  kernel: number;
  stride: number;
  pad: number;
  /** How many layers of the network have this exact shape. */
  count: number;
}

const layer = (net: string, name: string, C: number, K: number, H: number, kernel: number, stride: number, count = 1): ConvLayer =>
  ({ net, name, C, K, H, kernel, stride, pad: Math.floor((kernel - 1) / 2), count });

/** torchvision ResNet-50: 7x7 stem, bottlenecks 3-4-6-3 with the stride on the 3x3. */
export function resnet50Layers(S: number): ConvLayer[] {
  const n = 'resnet50';
  const L: ConvLayer[] = [layer(n, 'conv1 7x7/2', 3, 64, S, 7, 2)];
  const stages: [number, number, number, number][] = [[64, 256, 3, 1], [128, 512, 4, 2], [256, 1024, 6, 2], [512, 2048, 3, 2]];
  let inC = 64, size = S / 4;
  stages.forEach(([mid, out, blocks, stride], i) => {
    const s = `layer${i + 1}`;
    L.push(layer(n, `${s}.0.conv1 1x1`, inC, mid, size, 1, 1));
    L.push(layer(n, `${s}.0.conv2 3x3/${stride}`, mid, mid, size, 3, stride));
    L.push(layer(n, `${s}.0.downsample 1x1/${stride}`, inC, out, size, 1, stride));
    size /= stride;
    L.push(layer(n, `${s}.x.conv3 1x1`, mid, out, size, 1, 1, blocks));
    if (blocks > 1) {
      L.push(layer(n, `${s}.x.conv1 1x1`, out, mid, size, 1, 1, blocks - 1));
      L.push(layer(n, `${s}.x.conv2 3x3`, mid, mid, size, 3, 1, blocks - 1));
    }
    inC = out;
  });
  return L;
}

/** VGG-16 conv1_1 .. conv5_3, all 3x3 stride 1. */
export function vgg16Layers(S: number): ConvLayer[] {
  const n = 'vgg16';
  return [
    layer(n, 'conv1_1', 3, 64, S, 3, 1), layer(n, 'conv1_2', 64, 64, S, 3, 1),
    layer(n, 'conv2_1', 64, 128, S / 2, 3, 1), layer(n, 'conv2_2', 128, 128, S / 2, 3, 1),
    layer(n, 'conv3_1', 128, 256, S / 4, 3, 1), layer(n, 'conv3_x', 256, 256, S / 4, 3, 1, 2),
    layer(n, 'conv4_1', 256, 512, S / 8, 3, 1), layer(n, 'conv4_x', 512, 512, S / 8, 3, 1, 2),
    layer(n, 'conv5_x', 512, 512, S / 16, 3, 1, 3),
  ];
}

/** RepVGG-A0 in its training form: each block a 3x3 and a 1x1 branch (widths 48-48-96-192-1280, blocks 1-2-4-14-1). */
export function repvggA0Layers(S: number): ConvLayer[] {
  const n = 'repvgg_a0';
  const widths = [48, 48, 96, 192, 1280], blocks = [1, 2, 4, 14, 1];
  const L: ConvLayer[] = [];
  let inC = 3, size = S;
  widths.forEach((w, i) => {
    L.push(layer(n, `stage${i}.0 3x3/2`, inC, w, size, 3, 2), layer(n, `stage${i}.0 1x1/2`, inC, w, size, 1, 2));
    size /= 2;
    if (blocks[i]! > 1) L.push(layer(n, `stage${i}.x 3x3`, w, w, size, 3, 1, blocks[i]! - 1), layer(n, `stage${i}.x 1x1`, w, w, size, 1, 1, blocks[i]! - 1));
    inC = w;
  });
  return L;
}

export function convFlops(l: ConvLayer, batch: number): number {
  const OH = Math.floor((l.H + 2 * l.pad - l.kernel) / l.stride) + 1;
  return 2 * batch * l.K * OH * OH * l.C * l.kernel * l.kernel;
}
