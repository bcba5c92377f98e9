// Dawn prints two notices on every start-up on drivers that report huge dynamic-buffer limits
// (lavapipe does): "Warning: maxDynamic...BuffersPerPipelineLayout artificially reduced ...".
// They come from native code straight to file descriptor 2, and Dawn has no switch for its log
// level, so the command runs itself as a child whose stderr passes through a filter that drops
// exactly those lines and nothing else.
import { spawn } from 'node:child_process';

export const DAWN_NOTICE = /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/;
const NOTICE_START = 'Warning: maxDynamic';

/**
 * Passes text through, dropping whole lines that are Dawn's notice. A line that is still arriving
 * is held back only while it could still become the notice; progress lines (no newline) pass at once.
 */
export class NoticeFilter {
  private held = '';

  push(chunk: string): string {
    let text = this.held + chunk;
    this.held = '';
    let out = '';
    for (;;) {
      const nl = text.indexOf('\n');
      if (nl < 0) break;
      const line = text.slice(0, nl);
      if (!DAWN_NOTICE.test(line)) out += `${line}\n`;
      text = text.slice(nl + 1);
    }
    // An unfinished line: hold it while it may be the start of the notice, else let it through.
    const mayBeNotice = text.length <= NOTICE_START.length ? NOTICE_START.startsWith(text) : text.startsWith(NOTICE_START);
    if (text && mayBeNotice) this.held = text;
    else out += text;
    return out;
  }

  end(): string {
    const rest = DAWN_NOTICE.test(this.held) ? '' : this.held;
    this.held = '';
    return rest;
  }
}

/** Set in the child: its stderr is the filter's pipe (and whether the real one is a terminal). */
export const CHILD_ENV = 'CLOTHTAG_FILTERED_STDERR';

export function isFilteredChild(): boolean {
  return process.env[CHILD_ENV] !== undefined;
}

/** Whether the user's stderr is a terminal (in the child, as the parent saw it). */
export function stderrIsTerminal(): boolean {
  return process.env[CHILD_ENV] !== undefined ? process.env[CHILD_ENV] === 'tty' : !!process.stderr.isTTY;
}

/**
 * Runs this command again as a child with stderr filtered; resolves to its exit code. The child
 * is in a process group of its own, so a terminal's Ctrl-C reaches it once, forwarded from here
 * (SIGINT, SIGTERM, SIGHUP alike); a child that died of a signal is reported with that signal.
 */
export function runWithQuietStderr(script: string, args: string[]): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, script, ...args], {
    stdio: ['inherit', 'inherit', 'pipe'],
    detached: true,
    env: { ...process.env, [CHILD_ENV]: process.stderr.isTTY ? 'tty' : 'pipe' },
  });
  const filter = new NoticeFilter();
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => process.stderr.write(filter.push(chunk)));
  const forward = (signal: NodeJS.Signals) => () => {
    if (child.exitCode === null) child.kill(signal);
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise((resolve) => {
    child.on('error', (e) => {
      process.stderr.write(`clothtag: could not start: ${e.message}\n`);
      resolve(1);
    });
    child.on('close', (code, signal) => {
      process.stderr.write(filter.end());
      for (const [s, h] of handlers) process.off(s, h);
      if (signal) {
        // Die the same way, so that a shell or a test sees what happened (139 for SIGSEGV...).
        process.kill(process.pid, signal);
        resolve(128 + 1);
        return;
      }
      resolve(code ?? 1);
    });
  });
}

/**
 * In the child: stop when the parent is gone (killed with SIGKILL, it cannot forward anything):
 * a SIGTERM to itself, which a training run answers by saving and stopping after its step.
 */
export function followParent(): void {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
  }, 1000).unref();
  // Writing to the filter's pipe after the parent died must not crash the child.
  process.stderr.on('error', () => {});
}
