// Asking an adapter for a device with its maximum limits: what any host (Node, a browser, Deno)
// does before handing the device to `new Engine(device)`.

/** Features the engine uses when the adapter has them. */
export const WANTED_FEATURES: GPUFeatureName[] = ['timestamp-query', 'shader-f16', 'subgroups'];

export async function requestEngineDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredLimits: Record<string, number> = {};
  for (const key in adapter.limits) {
    // Dynamic-offset buffers are unused; asking for their maximum only makes Dawn print warnings.
    if (key.startsWith('maxDynamic')) continue;
    const value = (adapter.limits as unknown as Record<string, number>)[key];
    if (typeof value === 'number') requiredLimits[key] = value;
  }
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f));
  return adapter.requestDevice({ requiredFeatures, requiredLimits });
}
