/**
 * A barcode scanner is a keyboard that types fast: a scan is at least `minLength` printable
 * keys, each within `maxGapMs` of the previous one, ended by Enter. Pure (timestamps in), so it
 * is tested without a browser. Human typing is slower than the gap and never counts as a scan.
 */
export interface ScanDetectorOptions {
  minLength?: number;
  maxGapMs?: number;
}

export class ScanDetector {
  private buffer = '';
  private last = -Infinity;
  private readonly minLength: number;
  private readonly maxGapMs: number;

  constructor(options: ScanDetectorOptions = {}) {
    this.minLength = options.minLength ?? 4;
    this.maxGapMs = options.maxGapMs ?? 40;
  }

  /** Feed one key (KeyboardEvent.key) with its time; returns the scanned text when Enter ends a scan. */
  key(key: string, atMs: number): string | null {
    const gap = atMs - this.last;
    this.last = atMs;
    if (gap > this.maxGapMs) this.buffer = ''; // a pause: whatever came before was typed by hand
    if (key === 'Enter') {
      const text = this.buffer.length >= this.minLength ? this.buffer : null;
      this.buffer = '';
      return text;
    }
    if (key.length !== 1) {
      if (key !== 'Shift') this.buffer = '';
      return null;
    }
    this.buffer += key;
    return null;
  }
}
