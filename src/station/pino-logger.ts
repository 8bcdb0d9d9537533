/** The core Logger over pino, writing JSON lines to a file. Secrets are never passed to it. */
import pino from 'pino';
import type { Logger } from '../core/logger';

export interface FileLogger extends Logger {
  flush(): void;
}

export function createFileLogger(path: string, bindings: Record<string, unknown>, level = process.env.STATION_LOG_LEVEL ?? 'info'): FileLogger {
  const dest = pino.destination({ dest: path, sync: true, mkdir: true });
  const root = pino({ level, base: bindings, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: ['pin', '*.pin', 'seed', '*.seed'], censor: '[redacted]' } }, dest);
  const wrap = (l: pino.Logger): Logger => ({
    trace: (o, m) => l.trace(o, m),
    debug: (o, m) => l.debug(o, m),
    info: (o, m) => l.info(o, m),
    warn: (o, m) => l.warn(o, m),
    error: (o, m) => l.error(o, m),
    child: (b) => wrap(l.child(b)),
  });
  return { ...wrap(root), flush: () => dest.flushSync() };
}
