/**
 * Every module that registers PKCS#11 worker ops (pkcs11-worker-ops.ts). One import per
 * feature; the worker imports this file once.
 */
import './diagnostic-ops';
import './key-injection-ops';
import './seed-vault-ops';
import './identity-ops';
