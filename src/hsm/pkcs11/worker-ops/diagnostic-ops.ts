/** Ops that read the token's state without touching keys: used by health checks and tests. */
import { registerWorkerOps } from '../pkcs11-worker-ops';

registerWorkerOps({
  /** The token label and the number of objects the session sees (a cheap "is the HSM there"). */
  'diag.ping': (ctx) => {
    ctx.api.C_FindObjectsInit(ctx.session, []);
    let count = 0;
    try {
      for (;;) {
        const batch = ctx.api.C_FindObjects(ctx.session, 64);
        if (batch.length === 0) break;
        count += batch.length;
      }
    } finally {
      ctx.api.C_FindObjectsFinal(ctx.session);
    }
    return { tokenLabel: ctx.tokenLabel, objects: count };
  },
});
