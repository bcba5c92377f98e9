import type { Test } from 'tap';

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| everywhere, and reports the worst
 * element (index, both values) when it fails.
 */
export function assertClose(t: Test, actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, atol = 1e-4, rtol = 1e-3): void {
  if (actual.length !== expected.length) {
    t.fail(`${what}: ${actual.length} values, expected ${expected.length}`);
    return;
  }
  let worst = -1, worstExcess = 0, maxErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    const err = Math.abs(a - e);
    maxErr = Math.max(maxErr, err);
    const excess = err - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(a))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) t.fail(`${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} (atol ${atol}, rtol ${rtol})`);
  else t.pass(`${what}: ${actual.length} values within atol ${atol} rtol ${rtol} (max abs error ${maxErr.toExponential(2)})`);
}
