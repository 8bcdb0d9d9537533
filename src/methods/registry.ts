import { ConfigError } from '../core/errors';
import type { MethodId } from '../core/method-id';
import type { KeyMethod, MethodServices } from './key-method';
import { FactoryInjectedKeyMethod } from './factory-injected-key/factory-injected-key-method';
import { OnDeviceKeygenMethod } from './on-device-keygen/on-device-keygen-method';
import { SecureElementKeygenMethod } from './secure-element-keygen/secure-element-keygen-method';
import { SePreprovisionedMethod } from './se-preprovisioned/se-preprovisioned-method';
import { SeedDerivedMethod } from './seed-derived/seed-derived-method';

const FACTORIES: Partial<Record<MethodId, (services: MethodServices) => KeyMethod>> = {
  'on-device-keygen': () => new OnDeviceKeygenMethod(),
  'secure-element-keygen': () => new SecureElementKeygenMethod(),
  'se-preprovisioned': (services) => new SePreprovisionedMethod(services),
  'factory-injected-key': (services) => new FactoryInjectedKeyMethod(services),
  'seed-derived': (services) => new SeedDerivedMethod(services),
};

export function implementedMethods(): MethodId[] {
  return Object.keys(FACTORIES) as MethodId[];
}

export function createKeyMethod(id: MethodId, services: MethodServices): KeyMethod {
  const factory = FACTORIES[id];
  if (!factory) {
    throw new ConfigError('METHOD_NOT_IMPLEMENTED', `The method ${id} is not implemented in this station yet; implemented: ${implementedMethods().join(', ')}.`);
  }
  return factory(services);
}
