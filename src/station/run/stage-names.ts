/** The run model's stages, in order (style.md; contracts.md §3). */
import type { StageName } from '../../core/errors';

export const STAGES: readonly StageName[] = ['connect', 'identify', 'assign', 'obtain-key', 'issue', 'install', 'verify', 'record', 'lock', 'label', 'queue-sync'];
