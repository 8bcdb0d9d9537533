/**
 * The simulated chip vendor's side of method 5: it encrypts its seed file to the manufacturer's
 * seed-import public key, as docs/crypto-constructions.md §5 specifies (ECDH-ES with a fresh
 * ephemeral P-256 key, HKDF-SHA256, AES-256-GCM). The station never runs this code: it decrypts
 * with its own, inside its PKCS#11 worker. Only the format's names are shared (from core).
 */
import { createCipheriv, createECDH, createHash, createPublicKey, hkdfSync, randomBytes } from 'node:crypto';
import {
  SEED_FILE_ALG,
  SEED_FILE_ENC,
  SEED_FILE_IV_BYTES,
  SEED_FILE_KDF_INFO_PREFIX,
  SEED_FILE_SALT_BYTES,
  SEED_FILE_TYPE,
  SEED_FILE_VERSION,
} from '../../core/seed-file-envelope';

export interface VendorChip {
  chipId: Buffer;
  seed: Buffer;
}

export interface SeedFileContent {
  vendor: string;
  lot: string;
  createdAt?: string;
  chips: readonly VendorChip[];
}

/** The recipient's P-256 public key from a PEM or DER SubjectPublicKeyInfo: DER SPKI and the uncompressed point. */
export function recipientFromPublicKey(pemOrDer: Buffer | string): { spki: Buffer; point: Buffer } {
  const key = typeof pemOrDer === 'string' || pemOrDer.subarray(0, 10).toString('latin1').startsWith('-----')
    ? createPublicKey({ key: pemOrDer.toString(), format: 'pem' })
    : createPublicKey({ key: pemOrDer, format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error('the recipient key is not an EC P-256 public key');
  }
  const jwk = key.export({ format: 'jwk' });
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(jwk.x as string, 'base64url'), Buffer.from(jwk.y as string, 'base64url')]);
  return { spki: key.export({ format: 'der', type: 'spki' }), point };
}

/** Encrypt the seed list to the recipient; returns the file's bytes (UTF-8 JSON). */
export function writeSeedFile(recipientPublicKey: Buffer | string, content: SeedFileContent): Buffer {
  const recipient = recipientFromPublicKey(recipientPublicKey);
  const kid = createHash('sha256').update(recipient.spki).digest('hex');
  const ephemeral = createECDH('prime256v1');
  const epkPoint = ephemeral.generateKeys();
  const salt = randomBytes(SEED_FILE_SALT_BYTES);
  const header = {
    typ: SEED_FILE_TYPE,
    v: SEED_FILE_VERSION,
    alg: SEED_FILE_ALG,
    enc: SEED_FILE_ENC,
    kid,
    epk: { kty: 'EC', crv: 'P-256', x: epkPoint.subarray(1, 33).toString('base64url'), y: epkPoint.subarray(33).toString('base64url') },
    salt: salt.toString('base64url'),
  };
  const protectedB64 = Buffer.from(JSON.stringify(header), 'utf8').toString('base64url');
  const z = ephemeral.computeSecret(recipient.point);
  const info = Buffer.concat([SEED_FILE_KDF_INFO_PREFIX, Buffer.from(kid, 'hex'), epkPoint]);
  const cek = Buffer.from(hkdfSync('sha256', z, salt, info, 32));
  z.fill(0);
  const plain = Buffer.from(
    JSON.stringify({
      vendor: content.vendor,
      lot: content.lot,
      createdAt: content.createdAt ?? new Date().toISOString(),
      chips: content.chips.map((c) => ({ chipId: c.chipId.toString('hex'), seed: c.seed.toString('base64') })),
    }),
    'utf8',
  );
  const iv = randomBytes(SEED_FILE_IV_BYTES);
  try {
    const cipher = createCipheriv('aes-256-gcm', cek, iv);
    cipher.setAAD(Buffer.from(protectedB64, 'ascii'));
    const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
    const file = { protected: protectedB64, iv: iv.toString('base64url'), ciphertext: ciphertext.toString('base64url'), tag: cipher.getAuthTag().toString('base64url') };
    return Buffer.from(JSON.stringify(file, null, 2) + '\n', 'utf8');
  } finally {
    cek.fill(0);
    plain.fill(0);
  }
}
