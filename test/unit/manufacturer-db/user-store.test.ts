/** Station users: scrypt PIN hashes with per-user salts, lockout after wrong PINs, audited changes, no PIN anywhere in the database. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../../src/manufacturer-db/audit-chain';
import { openDatabase } from '../../../src/manufacturer-db/sqlite-database';
import { PIN_HASH_PARAMS, SqliteUserStore } from '../../../src/manufacturer-db/user-store';
import { testDir } from '../../helpers/station-cli';

function setUp(options: ConstructorParameters<typeof SqliteUserStore>[2] = {}) {
  const path = join(testDir('users'), 'station.db');
  const db = openDatabase(path);
  let now = new Date('2026-01-05T08:00:00Z');
  const store = new SqliteUserStore(db, 'station-1', { now: () => now, ...options });
  return { db, path, store, advance: (ms: number) => (now = new Date(now.getTime() + ms)) };
}

describe('SqliteUserStore', () => {
  it('hashes PINs with scrypt under the documented parameters and a salt per user; no PIN in the database file', async () => {
    const { db, path, store } = setUp();
    await store.addUser({ username: 'olive', role: 'operator', pin: '482915', by: 'test' });
    await store.addUser({ username: 'oscar', role: 'operator', pin: '482915', by: 'test' });
    const rows = db.prepare('SELECT pin_hash, pin_salt, pin_params FROM users ORDER BY username').all() as { pin_hash: Buffer; pin_salt: Buffer; pin_params: string }[];
    expect(JSON.parse(rows[0]!.pin_params)).toEqual(PIN_HASH_PARAMS);
    expect(PIN_HASH_PARAMS).toEqual({ N: 32768, r: 8, p: 1, keyLen: 32 });
    expect(rows[0]!.pin_salt.length).toBe(16);
    expect(rows[0]!.pin_salt.equals(rows[1]!.pin_salt)).toBe(false);
    expect(rows[0]!.pin_hash.equals(rows[1]!.pin_hash)).toBe(false); // same PIN, different salts
    expect((await store.checkSignIn('olive', '482915', 'test')).ok).toBe(true);
    db.close();
    const bytes = Buffer.concat([path, `${path}-wal`].filter((p) => existsSync(p)).map((p) => readFileSync(p)));
    expect(bytes.includes(Buffer.from('482915'))).toBe(false);
  });

  it('locks the account after five wrong PINs, refuses the right PIN while locked, and unlocks after the lockout or by a supervisor', async () => {
    const { db, store, advance } = setUp({ hashParams: { N: 1024, r: 8, p: 1, keyLen: 32 } });
    await store.addUser({ username: 'olive', role: 'operator', pin: '2468', by: 'sam' });
    const tries = [];
    for (let i = 0; i < 5; i++) tries.push(await store.checkSignIn('olive', '9999', 'test'));
    expect(tries.slice(0, 4).map((t) => (t.ok ? 'ok' : t.code === 'SIGN_IN_FAILED' ? t.attemptsLeft : t.code))).toEqual([4, 3, 2, 1]);
    expect(tries[4]).toMatchObject({ ok: false, code: 'USER_LOCKED', lockedUntil: '2026-01-05T08:05:00.000Z' });
    expect(await store.checkSignIn('olive', '2468', 'test')).toMatchObject({ ok: false, code: 'USER_LOCKED' });
    advance(5 * 60_000 + 1);
    expect((await store.checkSignIn('olive', '2468', 'test')).ok).toBe(true);
    for (let i = 0; i < 5; i++) await store.checkSignIn('olive', '0000', 'test');
    expect(await store.checkSignIn('olive', '2468', 'test')).toMatchObject({ code: 'USER_LOCKED' });
    store.unlock('olive', 'sam');
    expect((await store.checkSignIn('olive', '2468', 'test')).ok).toBe(true);
    const types = (db.prepare('SELECT type, data FROM audit_events ORDER BY seq').all() as { type: string; data: string }[]);
    expect(types.map((t) => t.type)).toEqual(expect.arrayContaining(['user.added', 'user.sign-in-failed', 'user.locked', 'user.sign-in-refused', 'user.signed-in', 'user.unlocked']));
    expect(types.map((t) => t.data).join('\n')).not.toMatch(/2468|9999|0000/);
    expect(verifyAuditChain(db).ok).toBe(true);
  });

  it('treats an unknown user like a wrong PIN and refuses short PINs and bad names', async () => {
    const { store } = setUp({ hashParams: { N: 1024, r: 8, p: 1, keyLen: 32 } });
    expect(await store.checkSignIn('nobody', '1234', 'test')).toEqual({ ok: false, code: 'SIGN_IN_FAILED', attemptsLeft: null });
    await expect(store.addUser({ username: 'olive', role: 'operator', pin: '12', by: 't' })).rejects.toMatchObject({ code: 'PIN_TOO_SHORT' });
    await expect(store.addUser({ username: 'Olive Smith', role: 'operator', pin: '1234', by: 't' })).rejects.toMatchObject({ code: 'USERNAME_INVALID' });
    await store.addUser({ username: 'olive', role: 'operator', pin: '1234', by: 't' });
    await expect(store.addUser({ username: 'olive', role: 'operator', pin: '1234', by: 't' })).rejects.toMatchObject({ code: 'USER_EXISTS' });
    await store.changePin('olive', '5678', 't');
    expect((await store.checkSignIn('olive', '1234', 'test')).ok).toBe(false);
    expect((await store.checkSignIn('olive', '5678', 'test')).ok).toBe(true);
  });
});
