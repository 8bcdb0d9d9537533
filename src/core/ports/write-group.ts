/**
 * Durable database writes that may share a commit with the other writes of the same turn (the
 * station wires its connection's TurnCommitter, src/manufacturer-db/sqlite-database.ts). `fn` is
 * synchronous database work (a store method; a function that returns a promise is refused). The
 * promise settles with its result once the transaction holding it has committed, and rejects
 * with its error (or the commit's). A method awaits it before anything that must follow a
 * durable write (a blob leaving for the device).
 */
export interface WriteGroup {
  run<T>(doing: string, fn: () => T): Promise<T>;
}

/** No grouping: `fn` runs at once in its own transaction(s), durable when it returns. */
export const IMMEDIATE_WRITES: WriteGroup = {
  run: <T>(doing: string, fn: () => T): Promise<T> => {
    try {
      const value = fn();
      // as the station's group refuses it: work that goes on after fn returned is in no transaction
      if (typeof (value as { then?: unknown } | null)?.then === 'function') return Promise.reject(new TypeError(`${doing}: a grouped write must be synchronous`));
      return Promise.resolve(value);
    } catch (err) {
      return Promise.reject(err);
    }
  },
};
