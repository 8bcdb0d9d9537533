/**
 * The HSM PIN the operator typed at the GUI, on its way to the PKCS#11 worker. It is handed out
 * for the CA's start-up (the in-process login and the worker's launch) and then forgotten: the
 * worker keeps its own copy (as bytes it zeroises on exit) and nothing in the station or the
 * bridge holds it. A worker restart after that asks for it again and gets HSM_PIN_REQUIRED,
 * which stops the line until the operator enters it again. Never logged, never stored.
 */
import { HsmError } from '../../core/errors';

export class HsmPinHandover {
  private pin: string | undefined;

  constructor(pin: string) {
    this.pin = pin;
  }

  /** The PIN source openIdevidCa calls; throws once the PIN was forgotten. */
  readonly provider = (): string => {
    if (this.pin === undefined) {
      throw new HsmError('HSM_PIN_REQUIRED', 'The HSM needs its PIN again: enter it on the Status screen of the station.');
    }
    return this.pin;
  };

  forget(): void {
    this.pin = undefined;
  }
}
