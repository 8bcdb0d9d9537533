/**
 * Probe a discovered port: open it, HELLO + IDENTIFY with a short timeout, close it. Never
 * throws, never hangs (one deadline over the whole probe, a bounded wait for the close) and
 * always closes what it opened. A port held by a running batch is refused by its lock and
 * reported as TRANSPORT_OPEN_FAILED; the probe does not disturb it.
 */
import { DeviceError, StationError } from '../../core/errors';
import type { Logger } from '../../core/logger';
import { silentLogger } from '../../core/logger';
import { DeviceClient } from '../device-client';
import { DeviceConnection } from '../device-connection';
import { SerialTransport } from '../transport/serial-transport';
import type { Transport } from '../transport/transport';
import type { PortCandidate } from './port-candidate';

export interface ProbedIdentity {
  model: string;
  hardwareId: string;
  firmwareVersion: string;
  macs: string[];
  locked: boolean;
  protocolVersion: number;
}

export type ProbeResult =
  | { status: 'identified'; identity: ProbedIdentity; durationMs: number }
  | { status: 'not-probed'; reason: string }
  | { status: 'failed'; error: StationError; durationMs: number };

export interface ProbeOptions {
  /** Serial line speed (deviceLink.baudRate). */
  baudRate: number;
  /** Per command (HELLO, IDENTIFY); default 1000 ms. */
  commandTimeoutMs?: number;
  /** The whole probe, open included; default 2 × commandTimeoutMs + 1000 ms. */
  deadlineMs?: number;
  /** How long to wait for the port to close before giving up on it; default 1000 ms. */
  closeTimeoutMs?: number;
  /** Transport for a serial candidate; default SerialTransport (serialport). */
  openSerial?: (candidate: PortCandidate) => Transport;
  /** Transport for a HID candidate; without one, HID candidates are not probed. */
  openHid?: (candidate: PortCandidate) => Transport;
  log?: Logger;
}

function wait(ms: number): { promise: Promise<void>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return { promise, cancel: () => clearTimeout(timer) };
}

function asDeviceError(err: unknown, path: string): StationError {
  if (err instanceof StationError) return err;
  return new DeviceError('PROBE_FAILED', `Probing ${path} failed: ${err instanceof Error ? err.message : String(err)}`, { details: { port: path }, cause: err });
}

export async function probePort(candidate: PortCandidate, options: ProbeOptions): Promise<ProbeResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const commandTimeoutMs = options.commandTimeoutMs ?? 1000;
  const deadlineMs = options.deadlineMs ?? 2 * commandTimeoutMs + 1000;
  const closeTimeoutMs = options.closeTimeoutMs ?? 1000;
  const factory =
    candidate.kind === 'hid' ? options.openHid : (options.openSerial ?? ((c: PortCandidate) => new SerialTransport({ path: c.path, baudRate: options.baudRate })));
  if (!factory) return { status: 'not-probed', reason: 'HID devices are probed only with a HID transport' };

  let transport: Transport;
  let connection: DeviceConnection;
  try {
    transport = factory(candidate);
    connection = new DeviceConnection(transport, options.log ?? silentLogger);
  } catch (err) {
    return { status: 'failed', error: asDeviceError(err, candidate.path), durationMs: elapsed() };
  }
  const client = new DeviceClient(connection, { commandTimeoutMs, keygenTimeoutMs: commandTimeoutMs });

  let opening: Promise<void> | undefined;
  let opened = false;
  let abandoned = false;
  const work = (async (): Promise<ProbedIdentity> => {
    opening = transport.open();
    await opening;
    opened = true;
    if (abandoned) throw new DeviceError('PROBE_TIMEOUT', `Probing ${candidate.path} was abandoned.`);
    const protocolVersion = await client.hello();
    const id = await client.identify();
    return { model: id.model, hardwareId: id.hardwareId, firmwareVersion: id.firmwareVersion, macs: id.macs, locked: id.locked, protocolVersion };
  })();
  work.catch(() => undefined); // settled below, or abandoned after the deadline

  const deadline = wait(deadlineMs);
  let result: ProbeResult;
  try {
    const outcome = await Promise.race([
      work.then((identity) => ({ identity })),
      deadline.promise.then(() => ({ timeout: true as const })),
    ]);
    result =
      'identity' in outcome
        ? { status: 'identified', identity: outcome.identity, durationMs: elapsed() }
        : {
            status: 'failed',
            error: new DeviceError('PROBE_TIMEOUT', `Probing ${candidate.path} did not finish within ${deadlineMs} ms.`, { retryable: true, details: { port: candidate.path, deadlineMs } }),
            durationMs: elapsed(),
          };
  } catch (err) {
    result = { status: 'failed', error: asDeviceError(err, candidate.path), durationMs: elapsed() };
  } finally {
    deadline.cancel();
  }

  // Close: at once when open, or as soon as a pending open finishes; never wait for ever.
  abandoned = true;
  if (opening && !opened) {
    opening.then(
      () => connection.close().catch(() => undefined),
      () => undefined,
    );
  } else if (opened) {
    const bound = wait(closeTimeoutMs);
    await Promise.race([connection.close().catch(() => undefined), bound.promise]);
    bound.cancel();
  }
  return result;
}
