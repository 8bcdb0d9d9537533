/**
 * The simulator's side of the link (src/simulator): the fault spec, the link faults DeviceLink
 * plays, device latency floors and the paced writer (contracts.md §4).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FLAG_ACK, FLAG_MORE, FLAG_RESPONSE, FrameDecoder, encodeFrame, type Frame } from '../../../src/device/framing/frame-codec';
import { encodeTlv, tlv, type TlvItem } from '../../../src/device/framing/tlv';
import { Command, KeyLocation, Tag } from '../../../src/device/protocol/commands';
import { DeviceStatus } from '../../../src/device/protocol/status';
import { DeviceLink, type DeviceLinkOptions, type Firmware, type FirmwareReply } from '../../../src/simulator/device-link';
import { FaultSpecError, parseFaultSpec, type LinkFault } from '../../../src/simulator/faults';
import { PacedWriter, latencyFloorMs, pacedTiming, wireMs } from '../../../src/simulator/link-timing';
import { VirtualDevice } from '../../../src/simulator/virtual-device';

describe('parseFaultSpec', () => {
  it('keeps the old INDEX=fault[+fault] syntax', () => {
    const spec = parseFaultSpec('0=silent, 2=csr-wrong-serial+readback-corrupt');
    expect([...spec.keys()]).toEqual([0, 2]);
    expect([...spec.get(0)!.firmware]).toEqual(['silent']);
    expect([...spec.get(2)!.firmware]).toEqual(['csr-wrong-serial', 'readback-corrupt']);
    expect(spec.get(2)!.link).toEqual([]);
    expect(parseFaultSpec(undefined).size).toBe(0);
    expect(parseFaultSpec('').size).toBe(0);
  });

  it('reads link faults with a command and a parameter', () => {
    const spec = parseFaultSpec('0=drop:GET_CSR,1=corrupt:install_chain,2=delay:IDENTIFY:4000,3=disconnect:0x20,4=wrong-seq:IDENTIFY,5=slow-se:2000+lock-refused,6=delay:250,7=corrupt');
    const link = (i: number): LinkFault[] => spec.get(i)!.link;
    expect(link(0)).toEqual([{ kind: 'drop', command: Command.GET_CSR }]);
    expect(link(1)).toEqual([{ kind: 'corrupt', command: Command.INSTALL_CHAIN }]);
    expect(link(2)).toEqual([{ kind: 'delay', command: Command.IDENTIFY, ms: 4000 }]);
    expect(link(3)).toEqual([{ kind: 'disconnect', command: Command.INSTALL_CHAIN }]);
    expect(link(4)).toEqual([{ kind: 'wrong-seq', command: Command.IDENTIFY }]);
    expect(link(5)).toEqual([{ kind: 'slow-se', ms: 2000 }]);
    expect([...spec.get(5)!.firmware]).toEqual(['lock-refused']);
    expect(link(6)).toEqual([{ kind: 'delay', ms: 250 }]);
    expect(link(7)).toEqual([{ kind: 'corrupt' }]);
  });

  it.each([
    ['0=bogus', /unknown fault "bogus"/],
    ['0=drop:NOPE', /unknown command "NOPE"/],
    ['0=delay:IDENTIFY', /expected delay:COMMAND:MS/],
    ['0=delay:IDENTIFY:soon', /not a whole number/],
    ['0=slow-se', /expected slow-se:MS/],
    ['0=silent:HELLO', /takes no arguments/],
    ['0=drop:HELLO:5', /expected drop\[:COMMAND\]/],
    ['x=silent', /expected PORT_INDEX=FAULT/],
    ['0=delay:HELLO:99999999', /more than/],
  ])('rejects %s with a readable message', (spec, message) => {
    expect(() => parseFaultSpec(spec)).toThrow(FaultSpecError);
    expect(() => parseFaultSpec(spec)).toThrow(message);
  });
});

/** A firmware that answers every request OK with a fixed payload, and counts what it handled. */
class EchoFirmware implements Firmware {
  handled: number[] = [];
  peerMaxPayloadBytes = 8192;
  maxPayloadBytes = 1024;
  devicesPresented = 1;
  constructor(private readonly reply: Buffer = encodeTlv([tlv.string(Tag.MODEL, 'echo')])) {}
  handleRequest(command: number): FirmwareReply {
    this.handled.push(command);
    return { status: DeviceStatus.OK, payload: this.reply };
  }
}

/** The station's end: requests in, decoded replies out (and what its decoder dropped). */
class StationEnd {
  readonly decoder = new FrameDecoder();
  readonly replies: Frame[] = [];
  readonly link: DeviceLink;
  private seq = 0x100;
  constructor(firmware: Firmware, options: DeviceLinkOptions = {}) {
    this.link = new DeviceLink(firmware, (bytes) => this.replies.push(...this.decoder.push(bytes)), options);
  }
  request(command: number, items: TlvItem[] = [], flags = 0, seq = ++this.seq): number {
    this.link.push(encodeFrame({ version: 1, flags, seq, command, status: 0, payload: encodeTlv(items) }));
    return seq;
  }
}

describe('DeviceLink link faults', () => {
  it('drop: the device never sees the command, and answers the others', () => {
    const fw = new EchoFirmware();
    const st = new StationEnd(fw, { faults: [{ kind: 'drop', command: Command.GET_CSR }] });
    st.request(Command.GET_CSR);
    st.request(Command.IDENTIFY);
    expect(fw.handled).toEqual([Command.IDENTIFY]);
    expect(st.replies.map((r) => r.command)).toEqual([Command.IDENTIFY]);
    expect(st.link.stats.framesLost).toBe(1);
  });

  it('corrupt: the reply fails its CRC at the station (a bit error, not a different answer)', () => {
    const st = new StationEnd(new EchoFirmware(), { faults: [{ kind: 'corrupt', command: Command.IDENTIFY }] });
    st.request(Command.IDENTIFY);
    expect(st.replies).toEqual([]);
    expect(st.decoder.stats.crcErrors).toBeGreaterThan(0);
    st.request(Command.HELLO);
    expect(st.replies.map((r) => r.command)).toEqual([Command.HELLO]);
  });

  it('wrong-seq: the reply carries another sequence number', () => {
    const st = new StationEnd(new EchoFirmware(), { faults: [{ kind: 'wrong-seq', command: Command.IDENTIFY }] });
    const seq = st.request(Command.IDENTIFY);
    expect(st.replies).toHaveLength(1);
    expect(st.replies[0]!.seq).not.toBe(seq);
    expect(st.replies[0]!.flags & FLAG_RESPONSE).toBe(FLAG_RESPONSE);
  });

  it('disconnect: the device goes away on the command and plays nothing more', () => {
    const onDisconnect = vi.fn();
    const fw = new EchoFirmware();
    const st = new StationEnd(fw, { faults: [{ kind: 'disconnect', command: Command.INSTALL_CHAIN }], onDisconnect });
    st.request(Command.HELLO);
    st.request(Command.INSTALL_CHAIN, [], FLAG_MORE); // mid-command: its first fragment
    st.request(Command.IDENTIFY);
    expect(onDisconnect).toHaveBeenCalledTimes(1);
    expect(st.link.disconnected).toBe(true);
    expect(fw.handled).toEqual([Command.HELLO]);
    expect(st.replies.map((r) => r.command)).toEqual([Command.HELLO]);
  });

  it('a new message abandons one whose fragments stopped (the station timed out on it)', () => {
    const fw = new EchoFirmware();
    const st = new StationEnd(fw);
    st.request(Command.INSTALL_CHAIN, [tlv.bytes(Tag.CERTIFICATE, Buffer.alloc(100))], FLAG_MORE);
    expect(st.replies.map((r) => [r.command, r.flags])).toEqual([[Command.INSTALL_CHAIN, FLAG_RESPONSE | FLAG_ACK]]);
    st.request(Command.HELLO);
    expect(st.replies[1]).toMatchObject({ command: Command.HELLO, status: DeviceStatus.OK });
    expect(fw.handled).toEqual([Command.HELLO]);
  });

  describe('with fake timers', () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('delay: the reply leaves MS later, and the device handles nothing else meanwhile', () => {
      const fw = new EchoFirmware();
      const st = new StationEnd(fw, { faults: [{ kind: 'delay', command: Command.IDENTIFY, ms: 4000 }] });
      st.request(Command.IDENTIFY);
      st.request(Command.HELLO); // waits in the receive buffer
      vi.advanceTimersByTime(3999);
      expect(st.replies).toEqual([]);
      expect(fw.handled).toEqual([Command.IDENTIFY]);
      vi.advanceTimersByTime(1);
      expect(st.replies.map((r) => r.command)).toEqual([Command.IDENTIFY, Command.HELLO]);
    });

    it('slow-se: only secure-element commands get slower', () => {
      const st = new StationEnd(new EchoFirmware(), { faults: [{ kind: 'slow-se', ms: 2000 }] });
      st.request(Command.IDENTIFY);
      expect(st.replies).toHaveLength(1);
      for (const cmd of [Command.GENERATE_KEY, Command.GET_CSR, Command.SIGN_CHALLENGE]) {
        st.request(cmd);
        vi.advanceTimersByTime(1999);
        expect(st.replies.at(-1)!.command).not.toBe(cmd);
        vi.advanceTimersByTime(1);
        expect(st.replies.at(-1)!.command).toBe(cmd);
      }
    });

    it('a full receive buffer loses frames, as a real UART does', () => {
      const fw = new EchoFirmware();
      const st = new StationEnd(fw, { faults: [{ kind: 'delay', command: Command.IDENTIFY, ms: 100 }], receiveBufferFrames: 2 });
      st.request(Command.IDENTIFY);
      for (let i = 0; i < 5; i++) st.request(Command.HELLO);
      vi.advanceTimersByTime(100);
      expect(st.replies).toHaveLength(3);
      expect(st.link.stats.framesLost).toBe(3);
    });

    it('latency floors: boot on the first HELLO of each device, SE keygen, flash writes per KiB', () => {
      const timing = pacedTiming(115200);
      const device = new VirtualDevice({ model: 'M', firmwareVersion: '1', method: 'on-device-keygen', faults: new Set(), se: undefined, maxPayloadBytes: 8192 });
      const st = new StationEnd(device, { timing, now: () => Date.now() });
      const at = (command: number, items: TlvItem[] = []): number => {
        const before = st.replies.length;
        const t0 = Date.now();
        st.request(command, items);
        let waited = 0;
        while (st.replies.length === before && waited < 10_000) {
          vi.advanceTimersByTime(1);
          waited++;
        }
        expect(st.replies[before]!.status).toBe(DeviceStatus.OK);
        return Date.now() - t0;
      };
      const hello = [tlv.u8(Tag.VERSION_MIN, 1), tlv.u8(Tag.VERSION_MAX, 1)];
      expect(at(Command.HELLO, hello)).toBeGreaterThanOrEqual(timing.bootMs);
      expect(at(Command.IDENTIFY)).toBe(0);
      expect(at(Command.GENERATE_KEY, [tlv.u8(Tag.KEY_LOCATION, KeyLocation.DEVICE)])).toBeGreaterThanOrEqual(timing.seKeygenMs);
      const uri = 'DPP:' + 'x'.repeat(5114) + ';;'; // 5120 bytes, 5127 with its TLVs: 10 ms of flash
      expect(at(Command.WRITE_ITEM, [tlv.u8(Tag.ITEM_ID, 2), tlv.string(Tag.ITEM_VALUE, uri)])).toBeGreaterThanOrEqual(10);
      // the next HELLO presents a new device: it boots again
      expect(at(Command.HELLO, hello)).toBeGreaterThanOrEqual(timing.bootMs);
      expect(device.devicesPresented).toBe(2);
    });
  });
});

describe('latencyFloorMs', () => {
  it('follows contracts.md §4', () => {
    const t = pacedTiming();
    expect(t).toEqual({ baud: 115200, chunkBytes: 64, seKeygenMs: 100, flashMsPerKb: 2, bootMs: 50 });
    expect(latencyFloorMs(t, Command.HELLO, 12, true)).toBe(50);
    expect(latencyFloorMs(t, Command.HELLO, 12, false)).toBe(0);
    expect(latencyFloorMs(t, Command.GENERATE_KEY, 4, false)).toBe(100);
    expect(latencyFloorMs(t, Command.INSTALL_CHAIN, 1536, false)).toBe(3);
    expect(latencyFloorMs(t, Command.WRITE_ITEM, 512, false)).toBe(1);
    expect(latencyFloorMs(t, Command.READ_ITEM, 512, false)).toBe(0);
  });
});

describe('PacedWriter', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('writes chunks of at most 64 bytes, each once its bytes have crossed the line', () => {
    const writes: Array<{ at: number; bytes: number }> = [];
    const t0 = Date.now();
    const w = new PacedWriter((b) => writes.push({ at: Date.now() - t0, bytes: b.length }), { baud: 9600, chunkBytes: 64 }, () => Date.now());
    w.send(Buffer.alloc(150, 1));
    expect(writes).toEqual([]);
    vi.advanceTimersByTime(1000);
    expect(writes.map((x) => x.bytes)).toEqual([64, 64, 22]);
    // 64 bytes at 9600 baud = 66.7 ms each; whole ms timers
    expect(writes[0]!.at).toBeGreaterThanOrEqual(Math.floor(wireMs(64, 9600)));
    expect(writes[1]!.at).toBeGreaterThanOrEqual(Math.floor(wireMs(128, 9600)));
    expect(writes[2]!.at).toBeGreaterThanOrEqual(Math.floor(wireMs(150, 9600)));
    expect(writes[2]!.at).toBeLessThanOrEqual(Math.ceil(wireMs(150, 9600)) + 1);
    expect(w.queuedBytes).toBe(0);
  });

  it('keeps order across sends and a busy line; cancel drops what is left', () => {
    const got: Buffer[] = [];
    const w = new PacedWriter((b) => got.push(b), { baud: 115200, chunkBytes: 64 }, () => Date.now());
    w.send(Buffer.from([1, 2, 3]));
    w.send(Buffer.alloc(100, 4));
    vi.advanceTimersByTime(3);
    w.send(Buffer.alloc(100, 5));
    w.cancel();
    vi.advanceTimersByTime(100);
    const all = Buffer.concat(got);
    expect([...all.subarray(0, 3)]).toEqual([1, 2, 3]);
    expect(all.length).toBeLessThan(203);
    expect(w.queuedBytes).toBe(0);
  });

  it('is as fast as the line on average, even when timers fire late', () => {
    let written = 0;
    const w = new PacedWriter((b) => (written += b.length), { baud: 921600, chunkBytes: 64 }, () => Date.now());
    w.send(Buffer.alloc(9216));
    vi.advanceTimersByTime(99);
    expect(written).toBeLessThan(9216);
    vi.advanceTimersByTime(3);
    expect(written).toBe(9216); // 9216 bytes at 921600 baud = 100 ms
  });
});
