// Scratch folders for tests, removed when the test that made them ends, passed or failed (a full
// `make test` used to leave about 120 MB of synthesized photos and checkpoints in the temp dir).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh folder named PREFIXxxxxxx in the system's temp dir, removed at `t`'s teardown. */
export function tempDir(t: { teardown(fn: () => void): void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
