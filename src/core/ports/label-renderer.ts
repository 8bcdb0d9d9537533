import type { LabelTemplate } from '../config';

/** Everything a label shows, built by the station from the committed device record. */
export interface LabelSpec {
  serial: string;
  model: string;
  /** 12 lowercase hex digits, or undefined when the product has no MAC. */
  mac: string | undefined;
  dppUri: string;
  /** YYYY-MM-DD of provisioning. */
  date: string;
  template: LabelTemplate;
}

export interface LabelRenderer {
  readonly format: 'png' | 'zpl' | 'svg';
  readonly mediaType: string;
  render(spec: LabelSpec): Promise<Buffer>;
}
