import type { MethodId } from '../core/method-id';
import type { KeyMethod, MethodServices } from './key-method';
import { FactoryInjectedKeyMethod } from './factory-injected-key/factory-injected-key-method';
import { OnDeviceKeygenMethod } from './on-device-keygen/on-device-keygen-method';
import { SecureElementKeygenMethod } from './secure-element-keygen/secure-element-keygen-method';
import { SePreprovisionedMethod } from './se-preprovisioned/se-preprovisioned-method';
import { SeedDerivedMethod } from './seed-derived/seed-derived-method';

/** One factory per method id: the compiler refuses a method id without one. */
const FACTORIES: Readonly<Record<MethodId, (services: MethodServices) => KeyMethod>> = {
  'on-device-keygen': () => new OnDeviceKeygenMethod(),
  'secure-element-keygen': () => new SecureElementKeygenMethod(),
  'se-preprovisioned': (services) => new SePreprovisionedMethod(services),
  'factory-injected-key': (services) => new FactoryInjectedKeyMethod(services),
  'seed-derived': (services) => new SeedDerivedMethod(services),
};

export function createKeyMethod(id: MethodId, services: MethodServices): KeyMethod {
  return FACTORIES[id](services);
}
