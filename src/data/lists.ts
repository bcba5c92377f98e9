// Parsers for the DeepFashion Category-and-Attribute benchmark's text lists. Each list is a
// count line, a header line, then one row per line; every problem is reported as file:line.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { listPathProblem, readRegularFile, withRegularFile } from './files.js';

export class ListError extends Error {
  override name = 'ListError';
}

export interface Problem {
  /** "file:line: what" */
  where: string;
  message: string;
}

/** Collects problems instead of stopping at the first; `fatal` ones make a list unusable. */
export class Problems {
  readonly items: Problem[] = [];
  add(file: string, line: number, message: string): void {
    this.items.push({ where: `${file}:${line}`, message });
  }
  toString(limit = 20): string {
    const shown = this.items.slice(0, limit).map((p) => `${p.where}: ${p.message}`);
    if (this.items.length > limit) shown.push(`... and ${this.items.length - limit} more`);
    return shown.join('\n');
  }
}

/** Text as a terminal can show it: control characters and binary bytes escaped, at most `max` characters. */
export function printable(text: string, max = 80): string {
  const cut = text.length > max ? `${text.slice(0, max)}...` : text;
  // eslint-disable-next-line no-control-regex
  return cut.replace(/[\u0000-\u001f\u007f-\u009f\ufffd]/g, (c) => (c === '\ufffd' ? '\\ufffd' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

function splitRows(file: string): string[] {
  return new TextDecoder().decode(readRegularFile(file)).split(/\r?\n/);
}

/**
 * Checks the count line (line 1) against the rows that follow the header (line 2), and reports a
 * list with no rows at all: it exists, so someone meant it to hold a task.
 */
function checkCount(file: string, lines: string[], rows: number, problems: Problems): void {
  const count = Number(lines[0]?.trim());
  if (!lines[0]?.trim() || !Number.isInteger(count)) problems.add(file, 1, `the first line should be the number of rows, got "${printable(lines[0]?.trim() ?? '')}"`);
  else if (count !== rows) problems.add(file, 1, `says ${count} rows but ${rows} follow`);
  if (rows === 0) problems.add(file, 1, 'has no rows: what it lists is left out');
}

/** A row's image name, or null (with the problem recorded) when it would leave the dataset's folder. */
function imageName(name: string, file: string, line: number, problems: Problems): string | null {
  const problem = listPathProblem(name);
  if (problem) {
    problems.add(file, line, `${printable(problem, 200)}: row skipped`);
    return null;
  }
  return name;
}

function dataLines(lines: string[]): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  for (let i = 2; i < lines.length; i++) {
    const text = lines[i]!.trim();
    if (text) out.push({ text, line: i + 1 });
  }
  return out;
}

export interface NamedType {
  name: string;
  type: number;
}

/**
 * `name type` rows (list_category_cloth.txt, list_attr_cloth.txt). Names may contain spaces:
 * the type is the last token.
 */
export function parseNameTypeList(file: string, problems: Problems): NamedType[] {
  const lines = splitRows(file);
  const rows = dataLines(lines);
  checkCount(file, lines, rows.length, problems);
  const out: NamedType[] = [];
  for (const { text, line } of rows) {
    const cut = text.lastIndexOf(' ') >= 0 ? Math.max(text.lastIndexOf(' '), text.lastIndexOf('\t')) : text.lastIndexOf('\t');
    const name = cut > 0 ? text.slice(0, cut).trim() : '';
    const type = Number(text.slice(cut + 1));
    if (!name || !Number.isInteger(type) || type < 1) {
      problems.add(file, line, `expected "name type" with a whole-number type, got "${printable(text)}"`);
      continue;
    }
    out.push({ name, type });
  }
  return out;
}

/** Rows of `image_name v1 v2 ...` with exactly `arity` numbers; returns name -> numbers. */
export function parseImageRows(file: string, arity: number | ((first: number[]) => number), problems: Problems, what: string): Map<string, { values: number[]; line: number }> {
  const lines = splitRows(file);
  const rows = dataLines(lines);
  checkCount(file, lines, rows.length, problems);
  const out = new Map<string, { values: number[]; line: number }>();
  for (const { text, line } of rows) {
    const tokens = text.split(/\s+/);
    const values = tokens.slice(1).map(Number);
    const expected = typeof arity === 'number' ? arity : arity(values);
    if (values.length !== expected || values.some((v) => !Number.isFinite(v))) {
      problems.add(file, line, `expected ${what} (${expected} numbers after the image name), got ${values.length}: "${printable(text)}"`);
      continue;
    }
    const name = imageName(tokens[0]!, file, line, problems);
    if (name === null) continue;
    if (out.has(name)) {
      problems.add(file, line, `${name} is listed again (first at line ${out.get(name)!.line}); the first row is kept`);
      continue;
    }
    out.set(name, { values, line });
  }
  return out;
}

/** Eval/list_eval_partition.txt: name -> train | val | test. */
export function parsePartition(file: string, problems: Problems): Map<string, 'train' | 'val' | 'test'> {
  const lines = splitRows(file);
  const rows = dataLines(lines);
  checkCount(file, lines, rows.length, problems);
  const out = new Map<string, 'train' | 'val' | 'test'>();
  const lineOf = new Map<string, number>();
  for (const { text, line } of rows) {
    const [name, split, ...rest] = text.split(/\s+/);
    if (!name || (split !== 'train' && split !== 'val' && split !== 'test') || rest.length) {
      problems.add(file, line, `expected "image_name train|val|test", got "${printable(text)}"`);
      continue;
    }
    if (imageName(name, file, line, problems) === null) continue;
    const first = lineOf.get(name);
    if (first !== undefined) {
      // A repeated row could move an image from train to test: say so, keep the first.
      problems.add(file, line, `${name} is listed again (first at line ${first}${out.get(name) !== split ? `, as ${out.get(name)}; this row says ${split}` : ''}); the first row is kept`);
      continue;
    }
    lineOf.set(name, line);
    out.set(name, split);
  }
  return out;
}

/**
 * list_attr_img.txt, streamed (about 600 MB in the full release): one Int8 per attribute and
 * image (1 present, -1 absent, 0 unknown), in file order.
 */
export async function parseAttributeLabels(file: string, attributes: number, problems: Problems): Promise<{ names: string[]; labels: Int8Array }> {
  // Refuses a FIFO or a device before streaming it; the file's size bounds what its count line may claim.
  const bytes = withRegularFile(file, file, Number.MAX_SAFE_INTEGER, (_fd, size) => size);
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity });
  let lineNo = 0;
  let declared = -1;
  const names: string[] = [];
  const lineOf = new Map<string, number>();
  let labels = new Int8Array(0);
  for await (const raw of rl) {
    lineNo++;
    const text = raw.trim();
    if (lineNo === 1) {
      declared = Number(text);
      if (!text || !Number.isInteger(declared) || declared < 0) {
        problems.add(file, 1, `the first line should be the number of rows, got "${printable(text)}"`);
        declared = -1;
      }
      // Every row takes at least two bytes per attribute: a larger count cannot be right, and is
      // not trusted with an allocation (the array grows as rows arrive).
      labels = new Int8Array(Math.min(Math.max(declared, 0), Math.floor(bytes / (2 * attributes + 2)), 1 << 20) * attributes);
      continue;
    }
    if (lineNo === 2 || !text) continue;
    const tokens = text.split(/\s+/);
    if (tokens.length !== attributes + 1) {
      problems.add(file, lineNo, `expected the image name and ${attributes} values (1, -1 or 0), got ${tokens.length - 1} values`);
      continue;
    }
    if (imageName(tokens[0]!, file, lineNo, problems) === null) continue;
    const first = lineOf.get(tokens[0]!);
    if (first !== undefined) {
      problems.add(file, lineNo, `${tokens[0]} is listed again (first at line ${first}); the first row is kept`);
      continue;
    }
    lineOf.set(tokens[0]!, lineNo);
    const row = names.length;
    if ((row + 1) * attributes > labels.length) {
      const grown = new Int8Array(Math.max(labels.length * 2, (row + 1) * attributes));
      grown.set(labels);
      labels = grown;
    }
    let bad = false;
    for (let a = 0; a < attributes; a++) {
      const v = Number(tokens[a + 1]);
      if (v !== 1 && v !== -1 && v !== 0) bad = true;
      labels[row * attributes + a] = v === 1 ? 1 : v === -1 ? -1 : 0;
    }
    if (bad) problems.add(file, lineNo, 'attribute values must be 1, -1 or 0');
    names.push(tokens[0]!);
  }
  if (declared >= 0 && declared !== names.length) problems.add(file, 1, `says ${declared} rows but ${names.length} follow`);
  if (!names.length) problems.add(file, 1, 'has no rows: what it lists is left out');
  return { names, labels: labels.subarray(0, names.length * attributes) };
}
