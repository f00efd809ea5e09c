// CNI error codes (CNI spec 1.1, "Error"): 1-99 are the spec's own, 100 and
// up are Palisade's. The runtime reads `code`; people read `msg` and `details`.

export const CniCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  containerUnknown: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidConfig: 7,
  tryAgainLater: 11,
  pluginNotAvailable: 50,
  rangeExhausted: 100,
  checkFailed: 101,
  datapathFailure: 102,
} as const;

export class CniError extends Error {
  readonly code: number;
  readonly details: string | undefined;
  constructor(code: number, message: string, details?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }

  toJSON(cniVersion: string): Record<string, unknown> {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}
