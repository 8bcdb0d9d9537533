import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../src/core/errors';
import { createPrinter, parsePrinterUri } from '../../../src/label-printer/printers/create-printer';
import { CupsPrinter } from '../../../src/label-printer/printers/cups-printer';
import { FilePrinter } from '../../../src/label-printer/printers/file-printer';
import { SerialPrinter } from '../../../src/label-printer/printers/serial-printer';
import { Tcp9100Printer } from '../../../src/label-printer/printers/tcp9100-printer';

describe('parsePrinterUri', () => {
  it.each([
    ['file:labels/out', { kind: 'file', dir: 'labels/out', format: 'zpl' }],
    ['file:out?format=png', { kind: 'file', dir: 'out', format: 'png' }],
    ['file:///var/labels?format=svg', { kind: 'file', dir: '/var/labels', format: 'svg' }],
    ['file://localhost/var/my%20labels', { kind: 'file', dir: '/var/my labels', format: 'zpl' }],
    ['file:', { kind: 'file', format: 'zpl' }],
    ['tcp://10.0.0.5:9100', { kind: 'tcp9100', host: '10.0.0.5', port: 9100, timeoutMs: 5000, statusQuery: true }],
    ['tcp://zebra1.line2.local', { kind: 'tcp9100', host: 'zebra1.line2.local', port: 9100, timeoutMs: 5000, statusQuery: true }],
    ['tcp://127.0.0.1:6101?timeoutMs=500&status=0', { kind: 'tcp9100', host: '127.0.0.1', port: 6101, timeoutMs: 500, statusQuery: false }],
    ['tcp://[::1]:9100/?status=true', { kind: 'tcp9100', host: '::1', port: 9100, timeoutMs: 5000, statusQuery: true }],
    ['serial:/dev/ttyUSB0', { kind: 'serial', path: '/dev/ttyUSB0', baudRate: 9600, timeoutMs: 5000 }],
    ['serial:/dev/serial/by-id/usb-Zebra-if00?baud=115200&timeoutMs=2000', { kind: 'serial', path: '/dev/serial/by-id/usb-Zebra-if00', baudRate: 115200, timeoutMs: 2000 }],
    ['cups:zebra_line2', { kind: 'cups', queue: 'zebra_line2', format: 'zpl', timeoutMs: 5000 }],
    ['CUPS:zebra1?format=png', { kind: 'cups', queue: 'zebra1', format: 'png', timeoutMs: 5000 }],
  ])('%s', (uri, expected) => {
    expect(parsePrinterUri(uri)).toEqual(expected);
  });

  it.each([
    ['no scheme', '10.0.0.5'],
    ['unknown scheme', 'lpd://printer/queue'],
    ['tcp without //', 'tcp:10.0.0.5:9100'],
    ['port out of range', 'tcp://10.0.0.5:70000'],
    ['port zero', 'tcp://10.0.0.5:0'],
    ['tcp with a path', 'tcp://10.0.0.5:9100/queue'],
    ['tcp with credentials', 'tcp://user:pw@10.0.0.5:9100'],
    ['unknown parameter', 'tcp://10.0.0.5:9100?timeout=5'],
    ['bad status', 'tcp://10.0.0.5:9100?status=yes'],
    ['zero timeout', 'tcp://10.0.0.5:9100?timeoutMs=0'],
    ['negative timeout', 'tcp://10.0.0.5:9100?timeoutMs=-5'],
    ['duplicate parameter', 'tcp://10.0.0.5?timeoutMs=5&timeoutMs=6'],
    ['file format jpeg', 'file:out?format=jpeg'],
    ['file:// with a remote host', 'file://server/share'],
    ['relative serial path', 'serial:ttyUSB0'],
    ['serial baud not a number', 'serial:/dev/ttyUSB0?baud=fast'],
    ['cups queue with a slash', 'cups:zebra/1'],
    ['cups svg', 'cups:zebra1?format=svg'],
    ['cups without a queue', 'cups:'],
  ])('rejects %s', (_name, uri) => {
    let err: unknown;
    try {
      parsePrinterUri(uri);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).code).toBe('PRINTER_URI_INVALID');
    expect((err as ConfigError).message).toContain(`"${uri}"`);
    expect((err as ConfigError).message).toContain('tcp://HOST[:PORT]');
  });
});

describe('createPrinter', () => {
  it('puts a file printer under the base dir, in labels/printed by default', () => {
    const p = createPrinter({ kind: 'file', format: 'png' }, { baseDir: '/run/out' });
    expect(p).toBeInstanceOf(FilePrinter);
    expect((p as FilePrinter).dir).toBe(join('/run/out', 'labels', 'printed'));
    expect(p.format).toBe('png');
    expect((createPrinter({ kind: 'file', dir: 'mine', format: 'zpl' }, { baseDir: '/run/out' }) as FilePrinter).dir).toBe('/run/out/mine');
    expect((createPrinter({ kind: 'file', dir: '/abs', format: 'zpl' }, { baseDir: '/run/out' }) as FilePrinter).dir).toBe('/abs');
  });

  it('builds each kind with its description and format', () => {
    const tcp = createPrinter(parsePrinterUri('tcp://10.0.0.5:9100'), { baseDir: '.' });
    expect(tcp).toBeInstanceOf(Tcp9100Printer);
    expect([tcp.description, tcp.format]).toEqual(['tcp9100 10.0.0.5:9100', 'zpl']);
    const v6 = createPrinter(parsePrinterUri('tcp://[fd00::5]:9100'), { baseDir: '.' });
    expect(v6.description).toBe('tcp9100 [fd00::5]:9100');
    const serial = createPrinter(parsePrinterUri('serial:/dev/ttyUSB0'), { baseDir: '.' });
    expect(serial).toBeInstanceOf(SerialPrinter);
    expect([serial.description, serial.format]).toEqual(['serial /dev/ttyUSB0', 'zpl']);
    const cups = createPrinter(parsePrinterUri('cups:zebra1?format=png'), { baseDir: '.' });
    expect(cups).toBeInstanceOf(CupsPrinter);
    expect([cups.description, cups.format]).toEqual(['cups zebra1', 'png']);
  });
});
