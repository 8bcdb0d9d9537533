/**
 * `--until-empty`: a port keeps taking devices until it is empty. A port is empty when nothing
 * answers HELLO on it within the command timeout (deviceLink.commandTimeoutMs, 3 s by default)
 * or its device goes away at connect: no serial was given, nothing was written. That probe is
 * not a device, so it is not reported; the port leaves the run and the run ends when every port
 * is empty. A port that cannot be opened at all is still an error (reported).
 */
import type { DeviceReport } from './report';

const EMPTY_AT_CONNECT: ReadonlySet<string> = new Set(['DEVICE_TIMEOUT', 'TRANSPORT_DISCONNECTED']);

export function isEmptyPort(report: DeviceReport): boolean {
  return report.serial === null && report.error !== null && report.error.stage === 'connect' && EMPTY_AT_CONNECT.has(report.error.code) && report.stages.length <= 1;
}
