import type { LabelTemplate } from '../../../src/core/config';
import type { LabelSpec } from '../../../src/core/ports/label-renderer';

export const DPP_URI =
  'DPP:C:81/1,81/6,81/11;M:0211223344aa;I:DEMO-000001;V:2;K:MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgACmyGPGZqaIiGAXfNTDFpgIL/yIRutxpIQWDqyFF0OUv0=;;';

/** Every line and the Code 128 on. */
const ALL_ON = { code128Serial: true, showModel: true, showMac: true, showDate: true } as const;

export const MM50X25_300: LabelTemplate = { widthMm: 50, heightMm: 25, dpi: 300, qrErrorCorrection: 'M', ...ALL_ON };
export const IN2X1_203: LabelTemplate = { widthMm: 50.8, heightMm: 25.4, dpi: 203, qrErrorCorrection: 'M', ...ALL_ON };

export function spec(overrides: Partial<LabelSpec> = {}): LabelSpec {
  return {
    serial: 'DEMO-000001',
    model: 'DemoSensor-1',
    mac: '0211223344aa',
    dppUri: DPP_URI,
    date: '2025-01-31',
    template: MM50X25_300,
    ...overrides,
  };
}
