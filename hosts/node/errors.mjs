// The one error type of the package, and how a component's failure becomes one.

/** Every failure: `kind` is the WIT `error` case, `detail` its payload. */
export class DflockdError extends Error {
  /**
   * @param {string} kind `timeout`, `auth`, `lock-lost`, `invalid-argument`, `connection`, ...
   *   (the WIT `error` tags), or `internal` when the component instance broke.
   * @param {string | {cause: string, detail: string} | undefined} detail the message, or
   *   for `lock-lost` the loss record. The component redacts secrets from it.
   */
  constructor(kind, detail) {
    super(`dflockd: ${kind}${describe(detail)}`);
    this.name = 'DflockdError';
    this.kind = kind;
    this.detail = detail;
  }
}

function describe(detail) {
  if (detail === undefined || detail === '') return '';
  if (typeof detail === 'string') return `: ${detail}`;
  return `: ${detail.cause}${detail.detail ? ` (${detail.detail})` : ''}`;
}

/** A WIT `error` value (`{tag, val}`) as a DflockdError. */
export function fromWit(error) {
  return new DflockdError(error.tag, error.val);
}

/**
 * jco throws an `err` result of an export as a ComponentError whose `payload` is the WIT
 * `error`; that is the component answering. Anything else (a trap, a host import that
 * threw) is not: `undefined`, and the caller treats the instance as broken.
 */
export function answerOf(e) {
  const payload = e?.payload;
  return typeof payload?.tag === 'string' ? fromWit(payload) : undefined;
}
