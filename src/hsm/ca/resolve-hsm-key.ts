/**
 * Where a station key lives: the configured labels (hsm.module, hsm.tokenLabel, hsm.caKeyLabel /
 * hsm.rootKeyLabel, hsm.pin), or an RFC 7512 URI (hsm.caKeyUri / hsm.rootKeyUri) whose attributes
 * override them one by one. Pure: reads the configuration, touches no HSM.
 */
import type { HsmConfig, PinSource } from '../../core/config';
import { formatPkcs11Uri, parseKeyUri, pinSourceFromUri } from '../../core/pkcs11-uri';

export interface ResolvedHsmKey {
  /** Path of the PKCS#11 module. */
  module: string;
  tokenLabel: string;
  /** Further token attributes a URI named; the token found must match each one. */
  tokenMatch: { serial?: string; manufacturer?: string; model?: string };
  /** CKA_LABEL of the private key (and of its public key). */
  keyLabel: string;
  /** CKA_ID the key must have, when a URI names one. */
  keyId?: Buffer;
  /** Where the user PIN is kept (never the PIN itself). */
  pin: PinSource;
  /** 'uri' when a URI was configured for this key, else 'labels'. */
  source: 'uri' | 'labels';
  /** A URI for this key that is safe to print (it never holds a PIN). */
  uri: string;
}

export type StationKeyRole = 'ca' | 'root';

export function resolveHsmKey(hsm: HsmConfig, which: StationKeyRole): ResolvedHsmKey {
  const text = which === 'ca' ? hsm.caKeyUri : hsm.rootKeyUri;
  const fallbackLabel = which === 'ca' ? hsm.caKeyLabel : hsm.rootKeyLabel;
  if (text === undefined) {
    return {
      module: hsm.module,
      tokenLabel: hsm.tokenLabel,
      tokenMatch: {},
      keyLabel: fallbackLabel,
      pin: hsm.pin,
      source: 'labels',
      uri: formatPkcs11Uri({ token: hsm.tokenLabel, object: fallbackLabel, type: 'private', modulePath: hsm.module }),
    };
  }
  const uri = parseKeyUri(text);
  const tokenMatch: ResolvedHsmKey['tokenMatch'] = {};
  if (uri.serial !== undefined) tokenMatch.serial = uri.serial;
  if (uri.manufacturer !== undefined) tokenMatch.manufacturer = uri.manufacturer;
  if (uri.model !== undefined) tokenMatch.model = uri.model;
  const resolved: ResolvedHsmKey = {
    module: uri.modulePath ?? hsm.module,
    tokenLabel: uri.token ?? hsm.tokenLabel,
    tokenMatch,
    keyLabel: uri.object ?? fallbackLabel,
    pin: uri.pinSource !== undefined ? pinSourceFromUri(uri.pinSource) : hsm.pin,
    source: 'uri',
    uri: '',
  };
  if (uri.id !== undefined) resolved.keyId = uri.id;
  resolved.uri = formatPkcs11Uri({
    token: resolved.tokenLabel,
    ...tokenMatch,
    object: resolved.keyLabel,
    type: 'private',
    id: resolved.keyId,
    modulePath: resolved.module,
    pinSource: uri.pinSource,
  });
  return resolved;
}
