// Parsers for the DeepFashion Category-and-Attribute benchmark's text lists. Each list is a
// count line, a header line, then one row per line; every problem is reported as file:line.
import { createReadStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

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

function splitRows(file: string): string[] {
  return readFileSync(file, 'utf8').split(/\r?\n/);
}

/** Checks the count line (line 1) against the rows that follow the header (line 2). */
function checkCount(file: string, lines: string[], rows: number, problems: Problems): void {
  const count = Number(lines[0]?.trim());
  if (!Number.isInteger(count)) problems.add(file, 1, `the first line should be the number of rows, got "${lines[0]?.trim() ?? ''}"`);
  else if (count !== rows) problems.add(file, 1, `says ${count} rows but ${rows} follow`);
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
      problems.add(file, line, `expected "name type" with a whole-number type, got "${text}"`);
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
    const name = tokens[0]!;
    const values = tokens.slice(1).map(Number);
    const expected = typeof arity === 'number' ? arity : arity(values);
    if (values.length !== expected || values.some((v) => !Number.isFinite(v))) {
      problems.add(file, line, `expected ${what} (${expected} numbers after the image name), got ${values.length}: "${text.slice(0, 80)}"`);
      continue;
    }
    if (out.has(name)) problems.add(file, line, `${name} is listed again (first at line ${out.get(name)!.line})`);
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
  for (const { text, line } of rows) {
    const [name, split, ...rest] = text.split(/\s+/);
    if (!name || (split !== 'train' && split !== 'val' && split !== 'test') || rest.length) {
      problems.add(file, line, `expected "image_name train|val|test", got "${text}"`);
      continue;
    }
    out.set(name, split);
  }
  return out;
}

/**
 * list_attr_img.txt, streamed (about 600 MB in the full release): one Int8 per attribute and
 * image (1 present, -1 absent, 0 unknown), in file order.
 */
export async function parseAttributeLabels(file: string, attributes: number, problems: Problems): Promise<{ names: string[]; labels: Int8Array }> {
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity });
  let lineNo = 0;
  let declared = -1;
  const names: string[] = [];
  let labels = new Int8Array(0);
  for await (const raw of rl) {
    lineNo++;
    const text = raw.trim();
    if (lineNo === 1) {
      declared = Number(text);
      if (!Number.isInteger(declared) || declared < 0) {
        problems.add(file, 1, `the first line should be the number of rows, got "${text}"`);
        declared = 1024;
      }
      labels = new Int8Array(declared * attributes);
      continue;
    }
    if (lineNo === 2 || !text) continue;
    const tokens = text.split(/\s+/);
    if (tokens.length !== attributes + 1) {
      problems.add(file, lineNo, `expected the image name and ${attributes} values (1, -1 or 0), got ${tokens.length - 1} values`);
      continue;
    }
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
  return { names, labels: labels.subarray(0, names.length * attributes) };
}
