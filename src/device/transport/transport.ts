/**
 * A byte pipe to one device. Obligations (after serialport's bindings-interface):
 * - `open` resolves once bytes can flow, and rejects with a DeviceError naming the path;
 * - `write` resolves when the bytes were handed to the OS; writes are never concurrent
 *   (the DeviceConnection above keeps one exchange in flight);
 * - data arrives through the `onData` listener in order, in chunks of any size;
 * - `onClose` fires once, with the reason, whether the close was asked for or not;
 * - `close` is idempotent.
 */
export type TransportCloseReason = 'closed' | 'disconnected' | 'error';

export interface Transport {
  readonly path: string;
  /** The largest v1 payload one frame may carry on this link (HID: 7595); default 8192. */
  readonly maxPayloadBytes?: number;
  open(): Promise<void>;
  write(bytes: Buffer): Promise<void>;
  close(): Promise<void>;
  onData(listener: (chunk: Buffer) => void): void;
  onClose(listener: (reason: TransportCloseReason, error?: Error) => void): void;
}
