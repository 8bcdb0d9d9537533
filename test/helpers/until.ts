/**
 * Polls `get` until it returns something other than undefined or false, and returns that; fails
 * with "timed out waiting for <what>" after `timeoutMs`. For state another process or thread
 * changes (a PTY's far end, a printer socket, a worker), where there is no event to await.
 */
export async function until<T>(what: string, get: () => T | undefined | false, timeoutMs = 10_000, everyMs = 5): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = get();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
