/**
 * `station user add|passwd|unlock|list`: the station's operators and supervisors
 * (manufacturer-db/user-store.ts). A PIN is read from the terminal without echo (asked twice),
 * from one line of stdin when stdin is not a terminal, or from the environment variable named by
 * --pin-env (for scripts). Never from the command line: argv is visible to every user of the
 * machine (ps, /proc) and lands in shell history.
 */
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { StationConfig } from '../../core/config';
import { ConfigError } from '../../core/errors';
import { openDatabase } from '../../manufacturer-db/sqlite-database';
import { SqliteUserStore, type UserRole } from '../../manufacturer-db/user-store';
import { cliErrorLine } from './cli-support';
import { ExitCode, exitCodeFor } from './exit-codes';

export interface UserCommandDeps {
  loadConfig(path: string | undefined): StationConfig;
}

interface GlobalOptions {
  config?: string;
  dataDir?: string;
}

/** Reads a line from the terminal without echoing it. */
function readHiddenLine(prompt: string): Promise<string> {
  const input = process.stdin;
  return new Promise((resolvePin, reject) => {
    process.stderr.write(prompt);
    let value = '';
    input.setRawMode(true);
    input.resume();
    input.setEncoding('utf8');
    const done = (err?: Error) => {
      input.setRawMode(false);
      input.pause();
      input.removeListener('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolvePin(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new ConfigError('PIN_ENTRY_CANCELLED', 'PIN entry cancelled.'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    input.on('data', onData);
  });
}

function readStdinLine(): Promise<string> {
  return new Promise((resolveLine) => {
    let data = '';
    process.stdin.setEncoding('utf8');
    const finish = () => {
      process.stdin.removeAllListeners('data');
      process.stdin.pause();
      resolveLine(data.split(/\r?\n/)[0] ?? '');
    };
    process.stdin.on('data', (chunk: string) => {
      data += chunk;
      if (data.includes('\n')) finish();
    });
    process.stdin.once('end', finish);
    process.stdin.resume();
  });
}

/** The new PIN, from --pin-env, the terminal (twice) or stdin. */
export async function readNewPin(pinEnv: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (pinEnv !== undefined) {
    if (!/^[A-Z_][A-Z0-9_]*$/.test(pinEnv)) throw new ConfigError('PIN_ENV_INVALID', '--pin-env takes the NAME of an environment variable (upper case), not a PIN.');
    const pin = env[pinEnv];
    if (pin === undefined || pin === '') throw new ConfigError('PIN_MISSING', `The environment variable ${pinEnv} is not set.`);
    return pin;
  }
  if (process.stdin.isTTY) {
    const first = await readHiddenLine('New PIN: ');
    const second = await readHiddenLine('Repeat the PIN: ');
    if (first !== second) throw new ConfigError('PIN_MISMATCH', 'The two PINs differ; nothing was changed.');
    return first;
  }
  const line = await readStdinLine();
  if (line === '') throw new ConfigError('PIN_MISSING', 'No PIN on stdin (give it on the first line, or use --pin-env NAME).');
  return line;
}

function defaultActor(): string {
  try {
    return process.env.STATION_OPERATOR ?? userInfo().username;
  } catch {
    return 'unknown';
  }
}

export function registerUserCommand(program: Command, deps: UserCommandDeps): Command {
  const openStore = () => {
    const g = program.opts<GlobalOptions>();
    const config = deps.loadConfig(g.config);
    const dataDir = resolve(g.dataDir ?? 'data');
    if (!existsSync(dataDir)) {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      chmodSync(dataDir, 0o700);
    }
    const db = openDatabase(join(dataDir, 'station.db'));
    return { store: new SqliteUserStore(db, config.stationId), close: () => db.close() };
  };
  const run = (fn: () => Promise<string>) => async () => {
    try {
      process.stdout.write(`${await fn()}\n`);
      process.exit(ExitCode.OK);
    } catch (err) {
      process.stderr.write(cliErrorLine(err));
      process.exit(exitCodeFor(err));
    }
  };

  const user = program.command('user').description('station users (operators and supervisors) who sign in at the GUI');
  user
    .command('add')
    .description('add a user; the PIN is asked on the terminal without echo, read from stdin, or taken from --pin-env NAME')
    .argument('<NAME>', 'user name: lower-case letters, digits, ".", "_" or "-"')
    .requiredOption('--role <ROLE>', 'operator (provisions) or supervisor (also reprints, reworks, retires serials, changes work orders)')
    .option('--display-name <TEXT>', 'name shown on the screen')
    .option('--pin-env <VAR>', 'read the PIN from this environment variable (for scripts); never give a PIN on the command line')
    .option('--by <NAME>', 'who adds the user (recorded in the audit trail)', defaultActor())
    .action((name: string, opts: { role: string; displayName?: string; pinEnv?: string; by: string }) =>
      run(async () => {
        if (opts.role !== 'operator' && opts.role !== 'supervisor') throw new ConfigError('ROLE_INVALID', `--role is operator or supervisor, not "${opts.role}".`);
        const pin = await readNewPin(opts.pinEnv);
        const { store, close } = openStore();
        try {
          const u = await store.addUser({ username: name, displayName: opts.displayName, role: opts.role as UserRole, pin, by: opts.by });
          return `added ${u.username} (${u.role})`;
        } finally {
          close();
        }
      })(),
    );
  user
    .command('passwd')
    .description('set a new PIN for a user (also clears a lock)')
    .argument('<NAME>', 'user name')
    .option('--pin-env <VAR>', 'read the new PIN from this environment variable (for scripts)')
    .option('--by <NAME>', 'who changes it (recorded in the audit trail)', defaultActor())
    .action((name: string, opts: { pinEnv?: string; by: string }) =>
      run(async () => {
        const pin = await readNewPin(opts.pinEnv);
        const { store, close } = openStore();
        try {
          await store.changePin(name, pin, opts.by);
          return `PIN of ${name} changed`;
        } finally {
          close();
        }
      })(),
    );
  user
    .command('unlock')
    .description('unlock an account locked after too many wrong PINs')
    .argument('<NAME>', 'user name')
    .option('--by <NAME>', 'who unlocks it (recorded in the audit trail)', defaultActor())
    .action((name: string, opts: { by: string }) =>
      run(async () => {
        const { store, close } = openStore();
        try {
          store.unlock(name, opts.by);
          return `${name} unlocked`;
        } finally {
          close();
        }
      })(),
    );
  user
    .command('list')
    .description('list the users, their roles and locks')
    .action(() =>
      run(async () => {
        const { store, close } = openStore();
        try {
          const users = store.listUsers();
          if (users.length === 0) return 'no users yet: add a supervisor first ("station user add NAME --role supervisor")';
          return users.map((u) => `${u.username}\t${u.role}\t${u.lockedUntil && Date.parse(u.lockedUntil) > Date.now() ? `locked until ${u.lockedUntil}` : 'active'}\t${u.displayName}`).join('\n');
        } finally {
          close();
        }
      })(),
    );
  return user;
}
