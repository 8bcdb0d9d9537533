/** The preload exposes exactly StationApi as window.station (style.md: electron/fiddle's narrow preload). */
import { describe, expect, it } from 'vitest';
import { exposeStationApi } from '../../../electron/preload/expose-station-api';
import { COMMAND_CHANNELS, EVENT_CHANNEL } from '../../../src/station/contract/channels';
import { COMMAND_NAMES } from '../../../src/station/contract/commands';
import type { StationApi, StationEvent } from '../../../src/station/contract/station-api';
import { FakeContextBridge, FakeIpcRenderer } from '../../helpers/fake-electron';

function exposed(answer: (channel: string, args: unknown[]) => unknown = () => ({ ok: true, value: 'v' })) {
  const bridge = new FakeContextBridge();
  const ipc = new FakeIpcRenderer(answer);
  exposeStationApi(bridge, ipc);
  return { bridge, ipc, api: bridge.exposed.get('station') as StationApi };
}

describe('electron preload', () => {
  it('exposes one object, window.station, with exactly the contract: every command and onEvent', () => {
    const { bridge, api } = exposed();
    expect([...bridge.exposed.keys()]).toEqual(['station']);
    expect(Object.keys(api).sort()).toEqual([...COMMAND_NAMES, 'onEvent'].sort());
    for (const key of Object.keys(api)) expect(typeof (api as unknown as Record<string, unknown>)[key]).toBe('function');
    expect(Object.isFrozen(api)).toBe(true);
    // nothing of Electron leaks: no ipcRenderer, no generic send/invoke
    expect(api).not.toHaveProperty('invoke');
    expect(api).not.toHaveProperty('send');
    expect(api).not.toHaveProperty('ipcRenderer');
  });

  it('sends each command on its own channel with its arguments, and answers its value', async () => {
    const { ipc, api } = exposed((channel, args) => ({ ok: true, value: { channel, args } }));
    for (const name of COMMAND_NAMES) {
      const call = (api as unknown as Record<string, (a: unknown) => Promise<unknown>>)[name]!;
      await expect(call({ probe: name })).resolves.toEqual({ channel: COMMAND_CHANNELS[name], args: [{ probe: name }] });
    }
    expect(ipc.invoked.map((i) => i.channel)).toEqual(COMMAND_NAMES.map((n) => COMMAND_CHANNELS[n]));
  });

  it('rejects with the station code when main answers an error', async () => {
    const { api } = exposed(() => ({ ok: false, error: { code: 'SUPERVISOR_REQUIRED', message: 'Only a supervisor can reprint a label.' } }));
    await expect(api.reprintLabel({ serial: 'DEMO-000001', reason: 'torn' })).rejects.toMatchObject({ code: 'SUPERVISOR_REQUIRED', message: 'SUPERVISOR_REQUIRED: Only a supervisor can reprint a label.' });
  });

  it('delivers events to subscribers until they unsubscribe', () => {
    const { ipc, api } = exposed();
    const got: StationEvent[] = [];
    const off = api.onEvent((e) => got.push(e));
    const event: StationEvent = { type: 'session.ended', reason: 'inactivity' };
    ipc.emit(EVENT_CHANNEL, event);
    off();
    ipc.emit(EVENT_CHANNEL, event);
    expect(got).toEqual([event]);
    expect(ipc.listenerCount(EVENT_CHANNEL)).toBe(0);
  });
});
