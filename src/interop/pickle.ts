// A restricted reader of Python pickles: it builds only plain values (None, booleans, numbers,
// strings, bytes, tuples, lists, dicts) and the objects a caller allows by their global name, and
// refuses every other global by name. No code is ever run: a pickle's "call this function" opcodes
// (REDUCE, NEWOBJ, BUILD) act only on the allowed constructors the caller supplies.

export class PickleError extends Error {
  override name = 'PickleError';
}

/** A global the pickle named (`module.name`), resolved through the caller's allow-list. */
export interface Global {
  global: string;
}

export interface PickleHooks {
  /** Globals the pickle may name, and what calling each with its arguments builds. */
  globals: Record<string, (args: unknown[]) => unknown>;
  /** Resolves a persistent id (torch: the storages the tensors point into). */
  persistentLoad?(pid: unknown): unknown;
}

const MARK = Symbol('mark');

/** Reads one pickle from `bytes` starting at `start`; returns the value and where it ended. */
export function unpickle(bytes: Uint8Array, hooks: PickleHooks, source: string, start = 0): { value: unknown; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let i = start;
  const fail = (why: string): never => {
    throw new PickleError(`${source}: ${why} (pickle byte ${i})`);
  };
  const need = (n: number) => {
    if (i + n > bytes.length) fail('the pickle ends early');
  };
  const u8 = () => (need(1), bytes[i++]!);
  const u16 = () => (need(2), (i += 2), view.getUint16(i - 2, true));
  const u32 = () => (need(4), (i += 4), view.getUint32(i - 4, true));
  const i32 = () => (need(4), (i += 4), view.getInt32(i - 4, true));
  const u64 = () => (need(8), (i += 8), Number(view.getBigUint64(i - 8, true)));
  const take = (n: number) => (need(n), (i += n), bytes.subarray(i - n, i));
  const text = (n: number) => new TextDecoder().decode(take(n));
  const line = () => {
    const nl = bytes.indexOf(0x0a, i);
    if (nl < 0) fail('a text argument has no end');
    const s = new TextDecoder('latin1').decode(bytes.subarray(i, nl));
    i = nl + 1;
    return s;
  };
  const pop = () => (stack.length ? stack.pop() : fail('the stack is empty'));
  const top = () => (stack.length ? stack[stack.length - 1] : fail('the stack is empty'));
  const popMark = () => {
    const at = stack.lastIndexOf(MARK);
    if (at < 0) fail('no mark on the stack');
    const items = stack.splice(at + 1);
    stack.pop();
    return items;
  };
  const global = (module: string, name: string): Global => {
    const full = `${module}.${name}`;
    if (!Object.hasOwn(hooks.globals, full)) fail(`refusing to load the global ${full}: only tensors, ordered dicts and plain values are read, and nothing is ever run`);
    return { global: full };
  };
  const call = (f: unknown, args: unknown): unknown => {
    if (!f || typeof f !== 'object' || !('global' in f)) fail('a call of something that is not an allowed global');
    if (!Array.isArray(args)) fail('call arguments are not a tuple');
    return hooks.globals[(f as Global).global]!(args as unknown[]);
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (!(dict instanceof Map)) fail('SETITEM on something that is not a dict');
    for (let k = 0; k + 1 < items.length; k += 2) (dict as Map<unknown, unknown>).set(items[k], items[k + 1]);
  };
  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: a length hint only
      case 0x2e: return { value: pop(), end: i }; // STOP
      case 0x28: stack.push(MARK); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x8a: case 0x8b: { // LONG1, LONG4: little-endian two's complement
        const n = op === 0x8a ? u8() : u32();
        const b = take(n);
        let v = 0n;
        for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[k]!);
        if (n && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(Number(v));
        break;
      }
      case 0x49: { // INT (text)
        const s = line().trim();
        stack.push(s === '00' ? false : s === '01' ? true : Number(s));
        break;
      }
      case 0x4c: stack.push(Number(line().trim().replace(/L$/, ''))); break; // LONG (text)
      case 0x47: need(8); stack.push(view.getFloat64(i, false)); i += 8; break; // BINFLOAT (big-endian)
      case 0x46: stack.push(Number(line())); break; // FLOAT (text)
      case 0x58: stack.push(text(u32())); break; // BINUNICODE
      case 0x8c: stack.push(text(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(text(u64())); break; // BINUNICODE8
      case 0x56: stack.push(line()); break; // UNICODE (raw-unicode-escape; plain text here)
      case 0x54: stack.push(new TextDecoder('latin1').decode(take(u32()))); break; // BINSTRING
      case 0x55: stack.push(new TextDecoder('latin1').decode(take(u8()))); break; // SHORT_BINSTRING
      case 0x53: stack.push(line().replace(/^['"]|['"]$/g, '')); break; // STRING
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: stack.push(take(u64()).slice()); break; // BINBYTES8
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) fail('APPEND to something that is not a list'); (l as unknown[]).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); const l = top(); if (!Array.isArray(l)) fail('APPENDS to something that is not a list'); (l as unknown[]).push(...items); break; } // APPENDS
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { const items = popMark(); const d = new Map(); setItems(d, items); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { const items = popMark(); const s = top(); if (!(s instanceof Set)) fail('ADDITEMS to something that is not a set'); for (const v of items) (s as Set<unknown>).add(v); break; } // ADDITEMS
      case 0x91: stack.push(new Set(popMark())); break; // FROZENSET
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x70: memo.set(Number(line()), top()); break; // PUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: case 0x67: { // BINGET, LONG_BINGET, GET
        const k = op === 0x68 ? u8() : op === 0x6a ? u32() : Number(line());
        if (!memo.has(k)) fail(`memo ${k} was never stored`);
        stack.push(memo.get(k));
        break;
      }
      case 0x63: { const module = line(); stack.push(global(module, line())); break; } // GLOBAL
      case 0x93: { const name = pop(), module = pop(); if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL of non-strings'); stack.push(global(module as string, name as string)); break; } // STACK_GLOBAL
      case 0x52: { const args = pop(); stack.push(call(pop(), args)); break; } // REDUCE
      case 0x81: { const args = pop(); stack.push(call(pop(), args)); break; } // NEWOBJ
      case 0x62: pop(); break; // BUILD: state (OrderedDict's _metadata, a parameter's hooks) is not needed
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!hooks.persistentLoad) fail('a persistent id, and nothing to resolve it');
        stack.push(hooks.persistentLoad!(pid));
        break;
      }
      case 0x50: { // PERSID (text)
        const pid = line();
        if (!hooks.persistentLoad) fail('a persistent id, and nothing to resolve it');
        stack.push(hooks.persistentLoad!(pid));
        break;
      }
      default:
        // INST, OBJ, EXT1/2/4, NEXT_BUFFER, READONLY_BUFFER, BYTEARRAY8 and anything unknown.
        fail(`opcode 0x${op.toString(16)} is not read (it builds arbitrary objects or is not a pickle opcode)`);
    }
  }
}
