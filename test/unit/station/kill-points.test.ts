import { describe, expect, it } from 'vitest';
import { killPoints } from '../../../src/station/run/kill-points';
import { STAGES } from '../../../src/station/run/stages';

describe('kill points', () => {
  it('are generated from the stage list: every stage has a start and an end point', () => {
    const points = killPoints();
    for (const stage of STAGES) {
      expect(points).toContain(`${stage}:start`);
      expect(points).toContain(`${stage}:end`);
    }
    expect(points).toHaveLength(STAGES.length * 2);
  });

  it('follow a stage added to the list', () => {
    expect(killPoints([...STAGES, 'connect'])).toHaveLength(STAGES.length * 2 + 2);
  });
});
