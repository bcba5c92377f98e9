import { stderrIsTerminal } from './quiet.js';

/** A status line: redrawn in place on a terminal, printed at most every few seconds otherwise. */
export class Progress {
  private last = 0;
  private shown = false;
  private readonly terminal = stderrIsTerminal();
  constructor(private readonly everyMs = 5000) {}

  update(line: string): void {
    if (this.terminal) {
      process.stderr.write(`\r\x1b[K${line}`);
      this.shown = true;
    } else if (performance.now() - this.last > this.everyMs) {
      process.stderr.write(`${line}\n`);
      this.last = performance.now();
    }
  }

  /** Ends the status line so that the next message starts on its own line. */
  done(): void {
    if (this.shown) process.stderr.write('\n');
    this.shown = false;
  }
}
