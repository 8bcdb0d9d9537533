/**
 * Serial ports named by path globs: PTYs are not udev devices, so the simulator's link folder
 * (and /dev/serial/by-id, the stable names of USB serial adapters) is read directly. A glob is
 * a folder and a simple pattern for its entries, where `*` matches any characters but `/`; an
 * entry without `*` names a folder (all its entries). An entry counts when it resolves (symlinks
 * followed) to a character device; dangling links and the simulator's far ends (`*.device`)
 * are skipped. `watch` puts an fs.watch on each folder that exists, and re-arms on each `list`
 * (a folder such as /dev/serial/by-id exists only while a USB serial adapter is plugged in).
 */
import { statSync, watch as fsWatch, type FSWatcher } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { DeviceError } from '../../core/errors';
import type { PortCandidate, PortLister } from './port-candidate';

export interface WatchGlob {
  /** Absolute folder. */
  folder: string;
  /** The pattern as written (`*` when the entry named a folder). */
  pattern: string;
  matches(name: string): boolean;
}

/** The simulator's far ends (`portN.device`): never a station port. */
const FAR_END = /\.device$/;

export function parseWatchGlob(glob: string, cwd = process.cwd()): WatchGlob {
  const trimmed = glob.length > 1 ? glob.replace(/\/+$/, '') : glob;
  const last = basename(trimmed);
  const hasStar = last.includes('*');
  const folder = resolve(cwd, hasStar ? dirname(trimmed) : trimmed);
  if (folder.includes('*')) {
    throw new DeviceError('DISCOVERY_GLOB_INVALID', `The watch glob ${glob} has a * outside its last part; write a folder and a pattern such as /dev/serial/by-id/*.`);
  }
  const pattern = hasStar ? last : '*';
  const source = pattern
    .split('*')
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/]*');
  const re = new RegExp(`^${source}$`);
  // Like a shell: `*` does not match a leading dot unless the pattern starts with one.
  const dotOk = pattern.startsWith('.');
  return { folder, pattern, matches: (name) => (dotOk || !name.startsWith('.')) && re.test(name) };
}

interface FolderWatch {
  watcher: FSWatcher;
  /** The folder's inode when the watch was set: a folder removed and made again needs a new watch. */
  ino: number;
}

interface Subscription {
  onChange: () => void;
  watchers: Map<string, FolderWatch>;
  closed: boolean;
}

export class GlobPortLister implements PortLister {
  readonly name = 'watched folders';
  readonly globs: readonly WatchGlob[];
  private readonly subscriptions = new Set<Subscription>();

  constructor(globs: readonly string[], cwd = process.cwd()) {
    this.globs = globs.map((g) => parseWatchGlob(g, cwd));
  }

  get folders(): string[] {
    return [...new Set(this.globs.map((g) => g.folder))];
  }

  async list(): Promise<PortCandidate[]> {
    for (const s of this.subscriptions) this.arm(s);
    const out: PortCandidate[] = [];
    const seen = new Set<string>();
    for (const glob of this.globs) {
      let names: string[];
      try {
        names = await readdir(glob.folder);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') continue;
        throw new DeviceError('DISCOVERY_FOLDER_UNREADABLE', `Cannot read the watched folder ${glob.folder}: ${(err as Error).message}`, {
          retryable: true,
          details: { folder: glob.folder },
        });
      }
      names.sort();
      for (const name of names) {
        if (!glob.matches(name) || FAR_END.test(name)) continue;
        const path = join(glob.folder, name);
        let real: string;
        try {
          real = await realpath(path);
          if (!(await stat(real)).isCharacterDevice()) continue;
        } catch {
          continue; // a dangling link: the device (or socat) just went away
        }
        if (seen.has(real)) continue;
        seen.add(real);
        out.push({ kind: 'serial', path, realPath: real, source: 'watch' });
      }
    }
    return out;
  }

  watch(onChange: () => void): { close(): void } {
    const sub: Subscription = { onChange, watchers: new Map(), closed: false };
    this.subscriptions.add(sub);
    this.arm(sub);
    return {
      close: () => {
        sub.closed = true;
        this.subscriptions.delete(sub);
        for (const w of sub.watchers.values()) w.watcher.close();
        sub.watchers.clear();
      },
    };
  }

  /**
   * Watch every folder that exists and is not watched yet. A watch whose folder is gone or was
   * made again (another inode) is dropped and set again; a missing folder is tried on the next list.
   */
  private arm(sub: Subscription): void {
    if (sub.closed) return;
    for (const folder of this.folders) {
      let ino: number | undefined;
      try {
        const st = statSync(folder);
        if (st.isDirectory()) ino = st.ino;
      } catch {
        ino = undefined;
      }
      const current = sub.watchers.get(folder);
      if (current && current.ino === ino) continue;
      if (current) {
        current.watcher.close();
        sub.watchers.delete(folder);
      }
      if (ino === undefined) continue; // not there (yet): polling covers it
      let watcher: FSWatcher;
      try {
        watcher = fsWatch(folder, { persistent: true }, () => sub.onChange());
      } catch {
        continue;
      }
      const entry: FolderWatch = { watcher, ino };
      watcher.on('error', () => {
        // The folder cannot be watched any more; the next list sets a new watch if it is back.
        watcher.close();
        if (sub.watchers.get(folder) === entry) sub.watchers.delete(folder);
        if (!sub.closed) sub.onChange();
      });
      sub.watchers.set(folder, entry);
    }
  }
}
