import { expect } from 'vitest';

/** Undo ^FH_ escaping: `_XX` is one byte, the bytes are UTF-8 (^CI28). */
export function unescapeFh(data: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (data[i] === '_') {
      bytes.push(parseInt(data.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(data.charCodeAt(i));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Undo ZPL ^BC mode N data: start/code-set invocation codes, ^ > ~ escapes, digit pairs in set C. */
export function decodeBcData(data: string): string {
  let out = '';
  let set: 'B' | 'C' | undefined;
  for (let i = 0; i < data.length; ) {
    if (data[i] === '>') {
      const code = data[i + 1];
      i += 2;
      if (code === ':' || code === '6') set = 'B';
      else if (code === ';' || code === '5') set = 'C';
      else if (set === 'B' && code === '<') out += '^';
      else if (set === 'B' && code === '0') out += '>';
      else if (set === 'B' && code === '=') out += '~';
      else throw new Error(`unexpected invocation code >${code}`);
      continue;
    }
    if (set === 'C') {
      expect(data.slice(i, i + 2)).toMatch(/^\d\d$/);
      out += data.slice(i, i + 2);
      i += 2;
    } else {
      expect(set, 'data before a start code').toBe('B');
      out += data[i];
      i += 1;
    }
  }
  return out;
}
