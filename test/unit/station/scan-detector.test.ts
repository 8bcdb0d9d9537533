/** A barcode scanner types fast and ends with Enter; a person types slower. */
import { describe, expect, it } from 'vitest';
import { ScanDetector } from '../../../renderer/src/scan-detector';

function feed(d: ScanDetector, text: string, gapMs: number, start = 1000): string | null {
  let t = start;
  let out: string | null = null;
  for (const ch of [...text, 'Enter']) {
    out = d.key(ch === 'Enter' ? 'Enter' : ch, (t += gapMs));
  }
  return out;
}

describe('ScanDetector', () => {
  it('returns the text of fast keystrokes ended by Enter', () => {
    expect(feed(new ScanDetector(), 'DEMO-000042', 8)).toBe('DEMO-000042');
  });
  it('ignores human typing and short bursts', () => {
    expect(feed(new ScanDetector(), 'DEMO-000042', 120)).toBeNull();
    expect(feed(new ScanDetector(), 'ab', 5)).toBeNull();
  });
  it('starts a new scan after a pause and ignores Shift', () => {
    const d = new ScanDetector();
    d.key('x', 0);
    d.key('y', 10);
    let t = 500;
    for (const k of ['Shift', 'W', 'Shift', 'O', '-', '1', '2']) d.key(k, (t += 5));
    expect(d.key('Enter', (t += 5))).toBe('WO-12');
  });
});
